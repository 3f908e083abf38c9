import fc from 'fast-check';
import { parse as parseLossless, stringify } from 'lossless-json';
import { describe, expect, it } from 'vitest';
import { checkJsonText, MAX_JSON_DEPTH, readExactJson } from '../../src/application/exact-json';

/** A JSON document as written, keys in order and repeats allowed (which a JS object cannot say). */
type Doc =
  | { kind: 'string'; value: string }
  | { kind: 'number'; text: string }
  | { kind: 'literal'; text: 'true' | 'false' | 'null' }
  | { kind: 'array'; items: Doc[] }
  | { kind: 'object'; entries: [string, Doc][] };

/** Strings that are fine, and the code units the books cannot hold: NUL, half a surrogate pair. */
const text = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 4 }) }, // Vietnamese, emoji: whole pairs
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.string({ maxLength: 3 }), fc.constantFrom('\u0000', '\ud800', '\udfff', '\ud83d', '\ude00', '\ud83d\ude00'), fc.string({ maxLength: 3 }))
      .map((parts) => parts.join('')),
  },
);
const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('amount', 'id', 'a', 'b', '__proto__') }, { weight: 1, arbitrary: text });
const numberText = fc.oneof(
  fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }).map(String),
  fc.tuple(fc.integer({ min: -999, max: 999 }), fc.nat({ max: 99 })).map(([a, b]) => `${a}.${b}`),
  fc.tuple(fc.integer({ min: -99, max: 99 }), fc.integer({ min: -20, max: 20 })).map(([a, e]) => `${a}e${e}`),
);
const doc: fc.Arbitrary<Doc> = fc.letrec<{ doc: Doc }>((tie) => ({
  doc: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    text.map((value): Doc => ({ kind: 'string', value })),
    numberText.map((t): Doc => ({ kind: 'number', text: t })),
    fc.constantFrom<Doc>({ kind: 'literal', text: 'true' }, { kind: 'literal', text: 'null' }),
    fc.array(tie('doc'), { maxLength: 4 }).map((items): Doc => ({ kind: 'array', items })),
    fc.array(fc.tuple(key, tie('doc')), { maxLength: 5 }).map((entries): Doc => ({ kind: 'object', entries })),
  ),
})).doc;

/** Written as JSON, each string raw or with every code unit escaped (`\u0041`): the rules hold after unescaping. */
function render(d: Doc, escape: boolean, space: string): string {
  const str = (s: string) =>
    escape ? `"${[...Array(s.length).keys()].map((i) => `\\u${s.charCodeAt(i).toString(16).padStart(4, '0')}`).join('')}"` : rawString(s);
  switch (d.kind) {
    case 'string':
      return str(d.value);
    case 'number':
    case 'literal':
      return d.text;
    case 'array':
      return `[${d.items.map((x) => render(x, escape, space)).join(`,${space}`)}]`;
    case 'object':
      return `{${d.entries.map(([k, v]) => `${str(k)}${space}:${space}${render(v, escape, space)}`).join(`,${space}`)}}`;
  }
}

/** A JSON string with its code units as they are, escaping only what JSON requires (quote, backslash, controls). */
const rawString = (s: string) =>
  `"${s.replace(/["\\\u0000-\u001f]/g, (c) => (c === '"' || c === '\\' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))}"`;

/** What must be refused, computed from the document itself. */
function hazard(d: Doc, depth = 1): boolean {
  const bad = (s: string) => s.includes('\u0000') || !s.isWellFormed();
  switch (d.kind) {
    case 'string':
      return bad(d.value);
    case 'number':
    case 'literal':
      return false;
    case 'array':
      return depth > MAX_JSON_DEPTH || d.items.some((x) => hazard(x, depth + 1));
    case 'object': {
      const keys = d.entries.map(([k]) => k);
      return (
        depth > MAX_JSON_DEPTH ||
        new Set(keys).size !== keys.length ||
        keys.some(bad) ||
        d.entries.some(([, v]) => hazard(v, depth + 1))
      );
    }
  }
}

describe('reading JSON that the books can hold', () => {
  it('refuses exactly the documents with NUL, half a surrogate pair or a repeated key, on the native and the lossless path alike', () => {
    fc.assert(
      fc.property(doc, fc.boolean(), fc.constantFrom('', ' ', '\n  '), (d, escape, space) => {
        const expected = !hazard(d);
        const native = render(d, escape, space);
        // The same document inside an array beside a fraction: only lossless-json may read that one.
        const lossless = `[1.5,${space}${native}]`;
        for (const text of [native, lossless]) {
          const read = readExactJson(text);
          expect(read.ok).toBe(expected);
          expect(checkJsonText(text) === null).toBe(expected);
          if (read.ok) expect(stringify(read.value)).toBe(stringify(parseLossless(text)));
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it.each([
    ['{"transaction":{"description":"a\\u0000b"}}', 'transaction.description', /U\+0000/],
    ['{"transaction":{"description":"emoji cut \\ud83d in half"}}', 'transaction.description', /unpaired/],
    ['{"transaction":{"description":"\\udc00"}}', 'transaction.description', /unpaired/],
    ['{"a":[1,{"b":["x","\\u0000"]}]}', 'a.1.b.1', /U\+0000/],
    ['{"transaction":{"amount":1,"amount":2}}', 'transaction.amount', /twice/],
    ['{"transaction":{"amount":1.5,"\\u0061mount":2}}', 'transaction.amount', /twice/],
    ['{"transaction":{"k\\u0000":1}}', 'transaction', /key holds U\+0000/],
    ['{"webhookType":"X\\u0000"}', 'webhookType', /U\+0000/],
  ])('names where the problem is: %s', (text, field, message) => {
    const read = readExactJson(text);
    expect(read.ok).toBe(false);
    if (!read.ok) {
      expect(read.error).toEqual([{ field, message: expect.stringMatching(message) }]);
    }
  });

  it.each([
    ['arrays', (d: number) => `{"a":${'['.repeat(d - 1)}1${']'.repeat(d - 1)}}`],
    ['objects', (d: number) => `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`],
    ['arrays, on the lossless path', (d: number) => `{"f":1.5,"a":${'['.repeat(d - 1)}1${']'.repeat(d - 1)}}`],
  ])('reads %s nested %i deep and refuses one level more, however deep, without recursing', (_, nested) => {
    expect(readExactJson(nested(MAX_JSON_DEPTH)).ok).toBe(true);
    for (const depth of [MAX_JSON_DEPTH + 1, 100_000]) {
      const read = readExactJson(nested(depth));
      expect(read).toMatchObject({ ok: false, error: [{ message: `nested deeper than ${MAX_JSON_DEPTH} levels` }] });
    }
  });

  it('keeps a key named __proto__ as data', () => {
    const read = readExactJson('{"__proto__":{"x":1},"y":2}');
    expect(read.ok && Object.getPrototypeOf(read.value)).toBe(Object.prototype);
    expect(read.ok && stringify(read.value)).toBe('{"__proto__":{"x":1},"y":2}');
  });

  it('is not fooled by quotes, colons and escapes inside strings', () => {
    for (const text of ['{"a":"\\"b\\":1","b":"x"}', '{"a" : "\\\\u0000", "b":"c\\":"}', '{"t":"16:25:00", "u":"\\u00e9\\n"}']) {
      expect(readExactJson(text)).toMatchObject({ ok: true });
    }
    expect(readExactJson('{"a" :1, "a":2}')).toMatchObject({ ok: false, error: [{ field: 'a' }] });
  });
});
