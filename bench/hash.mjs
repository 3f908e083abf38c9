// SHA-256 of a ~1 KB webhook body, through a Hash object (createHash) and Node's one-shot crypto.hash (20.12+):
// what ingest pays twice per webhook (the raw body, the transaction's canonical text). `node bench/hash.mjs`
import { createHash, hash } from 'node:crypto';

const bodies = Array.from({ length: 5000 }, (_, i) => Buffer.from(`{"webhookType":"TRANSACTIONS",${'"description":"Chuyển tiền mua hàng",'.repeat(25)}"n":${i}}`));
const texts = bodies.map((b) => b.toString('utf8'));
function time(label, f, inputs) {
  const rounds = [];
  for (let round = 0; round < 9; round++) {
    const started = process.hrtime.bigint();
    for (const input of inputs) f(input);
    rounds.push(Number(process.hrtime.bigint() - started) / inputs.length / 1000);
  }
  rounds.sort((a, b) => a - b);
  console.log(`${label.padEnd(20)} median ${rounds[4].toFixed(2)} µs, best ${rounds[0].toFixed(2)} µs (9 rounds of ${inputs.length}; garbage collection included)`);
}
time('createHash, bytes', (b) => createHash('sha256').update(b).digest('hex'), bodies);
time('crypto.hash, bytes', (b) => hash('sha256', b, 'hex'), bodies);
time('createHash, text', (t) => createHash('sha256').update(t).digest('hex'), texts);
time('crypto.hash, text', (t) => hash('sha256', t, 'hex'), texts);
