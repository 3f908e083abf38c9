/**
 * Micro benchmark of reading a webhook body exactly: what the checks (depth, NUL, surrogates, duplicate keys) cost.
 * `npx tsx bench/exact-json.ts`; prints the best of five rounds, in µs per body.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LosslessNumber, parse as parseLossless } from 'lossless-json';
import { parseCasWebhook } from '../src/application/cas-webhook';
import { checkJsonText, readExactJson } from '../src/application/exact-json';

const sample = readFileSync(join(import.meta.dirname, '..', 'test', 'fixtures', 'transaction-webhook.json'), 'utf8');
const body = JSON.parse(sample);
// ~1 KB, the size of a real delivery; one with a fraction (the lossless path); one near the 256 KB limit.
const small = JSON.stringify({ ...body, transaction: { ...body.transaction, description: 'CHUYỂN KHOẢN NAPAS 247 thanh toán hóa đơn' } });
const fraction = small.replace('"amount":10000', '"amount":10000.0');
const large = JSON.stringify({ ...body, transaction: { ...body.transaction, description: 'Chuyển khoản đến tài khoản '.repeat(7000) } });

/** The exact parse before the checks existed (main at 8dee918): JSON.parse with a reviver, nothing refused. */
function unchecked(text: string): unknown {
  if (!/(^|[:,[])\s*-?\d+(\.|[eE])/.test(text)) {
    let exact = true;
    const value: unknown = JSON.parse(text, (_key, v: unknown) => {
      if (typeof v !== 'number') return v;
      if (!Number.isSafeInteger(v)) exact = false;
      return new LosslessNumber(String(v));
    });
    if (exact) return value;
  }
  return parseLossless(text);
}

function measure(label: string, text: string, run: (text: string) => unknown): number {
  const iterations = Math.max(200, Math.floor(20_000_000 / text.length));
  for (let i = 0; i < iterations / 4; i++) run(text); // warm up the JIT
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) run(text);
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1000 / iterations);
  }
  console.log(`  ${label.padEnd(58)} ${best.toFixed(2).padStart(9)} µs`);
  return best;
}

for (const [name, text] of [
  ['1 KB webhook, integers (native path)', small],
  ['1 KB webhook, amount 10000.0 (lossless path)', fraction],
  ['220 KB webhook (native path)', large],
] as const) {
  console.log(`${name}, ${Buffer.byteLength(text)} bytes`);
  const before = measure('before: JSON.parse + reviver, nothing checked', text, unchecked);
  const now = measure('now: readExactJson (exact parse and every check)', text, readExactJson);
  measure('the full scan alone (checkJsonText)', text, checkJsonText);
  measure('lossless-json parse alone', text, parseLossless);
  const bytes = Buffer.from(text);
  measure('parseCasWebhook (UTF-8, read, zod, domain rules)', text, () => parseCasWebhook(bytes));
  console.log(`  now / before: ${((now / before) * 100).toFixed(0)} %\n`);
}
