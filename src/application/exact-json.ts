import { LosslessNumber, parse as parseLosslessJson } from 'lossless-json';
import { err, ok, type Result } from '../domain/result';

/** One thing wrong with a delivery, named by its path in the body (`transaction.amount`). */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

/** Deepest nesting a body may have; the top-level object is depth 1. Cas's deepest shape is 3. */
export const MAX_JSON_DEPTH = 64;

/**
 * Reads JSON text exactly, and only what the books can hold. Every path that books a body (webhook, backfill item,
 * re-ingest) reads through here.
 *
 * Numbers keep their exact value (as LosslessNumber): the native parser is several times faster and exact for
 * integers up to 2^53, so it is used when no number in the text has a fraction or an exponent and every number it
 * meets is a safe integer; otherwise lossless-json reads the text. Refused, on both paths alike (`checkJsonText`):
 * nesting deeper than MAX_JSON_DEPTH, U+0000 or an unpaired surrogate in any string or key, a key twice in an object.
 */
export function readExactJson(text: string): Result<unknown, FieldProblem[]> {
  if (!MAYBE_INEXACT.test(text)) {
    let value: unknown;
    try {
      value = JSON.parse(text); // iterative in V8: no depth overflows it
    } catch (error) {
      return malformed(error);
    }
    const walk: Walk = { keys: 0, inexact: false, suspect: false };
    const exact = internalize(value, 1, walk);
    if (!walk.inexact) {
      // Every key is a string followed by a colon, so `keysBeforeColons` ≥ the keys in the text ≥ the keys parsed:
      // equal counts prove that no key was written twice. Anything else is decided by the full scan.
      if (!walk.suspect && keysBeforeColons(text) === walk.keys) return ok(exact);
      const problem = checkJsonText(text);
      if (problem) return err([problem]);
      if (walk.suspect) return err([{ field: '(body)', message: 'the body holds a string or nesting that cannot be stored' }]);
      return ok(exact);
    }
  }
  // The lossless parser recurses: the scan goes first, so it never meets nesting deeper than MAX_JSON_DEPTH.
  const problem = checkJsonText(text);
  if (problem) return err([problem]);
  try {
    return ok(parseLosslessJson(text));
  } catch (error) {
    return malformed(error);
  }
}

const malformed = (error: unknown) => err([{ field: '(body)', message: `malformed JSON: ${(error as Error).message}` }]);

/** A number in value position with a fraction or an exponent (a string that merely looks so costs a slower parse). */
const MAYBE_INEXACT = /(^|[:,[])\s*-?\d+(\.|[eE])/;

interface Walk {
  /** Keys of every object parsed (a key written twice counts once). */
  keys: number;
  /** A number that is not a safe integer: the native parse may have rounded it. */
  inexact: boolean;
  /** Too deep, or a string or key that cannot be stored: the full scan names it. */
  suspect: boolean;
}

/**
 * After JSON.parse: numbers become LosslessNumber (in place), strings and keys are checked, keys counted. A walk in
 * JavaScript costs a fraction of a JSON.parse reviver. It never descends past MAX_JSON_DEPTH.
 */
function internalize(value: unknown, depth: number, walk: Walk): unknown {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return new LosslessNumber(String(value));
    walk.inexact = true; // rounded, or Infinity: lossless-json reads the text again
    return value;
  }
  if (typeof value === 'string') {
    if (!storable(value)) walk.suspect = true;
    return value;
  }
  if (typeof value !== 'object' || value === null) return value;
  if (depth > MAX_JSON_DEPTH) {
    walk.suspect = true;
    return value;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = internalize(value[i], depth + 1, walk);
    return value;
  }
  const object = value as Record<string, unknown>;
  for (const key in object) {
    walk.keys += 1;
    if (!storable(key)) walk.suspect = true;
    const child = object[key];
    if (typeof child === 'string' || typeof child === 'number' || (typeof child === 'object' && child !== null)) {
      const replaced = internalize(child, depth + 1, walk);
      if (replaced === child) continue;
      // `__proto__` is an own data property here: assigning it would set the prototype instead.
      if (key === '__proto__') Object.defineProperty(object, key, { value: replaced, writable: true, enumerable: true, configurable: true });
      else object[key] = replaced;
    }
  }
  return object;
}

/** PostgreSQL text and jsonb hold neither U+0000 nor half a surrogate pair. */
const storable = (text: string): boolean =>
  text.indexOf('\0') === -1 && text.isWellFormed();

/** How many colons follow a closing quote (whitespace between allowed): at least one per key in the text. */
function keysBeforeColons(text: string): number {
  let count = 0;
  for (let i = text.indexOf(':'); i !== -1; i = text.indexOf(':', i + 1)) {
    let j = i - 1;
    let c = text.charCodeAt(j);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(--j);
    if (c === 0x22) count += 1;
  }
  return count;
}

interface Frame {
  /** The keys met so far (an object), or null (an array). */
  readonly keys: Set<string> | null;
  /** The last key met (an object) or the index of the current element (an array). */
  last: string;
  index: number;
}

/**
 * One pass over JSON text for what a parser lets through but the books cannot hold, or would hold ambiguously:
 * - nesting deeper than MAX_JSON_DEPTH (checked before any recursive parser or walker sees the value);
 * - U+0000 or an unpaired surrogate in any string or key, escaped or not (PostgreSQL text and jsonb refuse both,
 *   and a read model would stop on them);
 * - a key twice in one object (JSON.parse keeps the last, lossless-json refuses: a ledger must not pick one).
 * Returns the first problem found, named by its path. Text that is not JSON is left to the parser to describe.
 */
export function checkJsonText(text: string): FieldProblem | null {
  const stack: Frame[] = [];
  const n = text.length;
  let expectKey = false;
  let i = 0;
  for (;;) {
    // Jump to the next character that matters outside strings (native regex scanning, no allocation).
    STRUCTURE.lastIndex = i;
    if (!STRUCTURE.test(text)) return null;
    i = STRUCTURE.lastIndex - 1;
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = scanString(text, i + 1);
      const top = stack[stack.length - 1];
      const isKey = expectKey && top !== undefined && top.keys !== null;
      if (end < 0) {
        const problem = end === UNPAIRED_AT ? UNPAIRED : NUL;
        return { field: pathOf(stack, isKey), message: `${isKey ? 'a key' : 'a string'} holds ${problem}` };
      }
      if (end >= n) return null; // unterminated: the parser says so
      if (isKey) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? unescapeKey(`"${raw}"`) : raw;
        if (key !== null) {
          if (top.keys!.has(key)) return { field: pathOf(stack, false, key), message: 'this key appears twice in its object' };
          top.keys!.add(key);
          top.last = key;
        }
        expectKey = false;
      }
      i = end + 1;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= MAX_JSON_DEPTH) {
        return { field: pathOf(stack, false), message: `nested deeper than ${MAX_JSON_DEPTH} levels` };
      }
      stack.push({ keys: c === 0x7b ? new Set() : null, last: '', index: 0 });
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else {
      // a comma
      const top = stack[stack.length - 1];
      if (top?.keys === null) top.index += 1;
      else expectKey = top !== undefined;
    }
    i += 1;
  }
}

const STRUCTURE = /["{}[\],]/g;
/** Inside a string, the code units that need a look: its end, an escape, NUL, a surrogate. */
const IN_STRING = /["\\\u0000\ud800-\udfff]/g;
const NUL_AT = -1;
const UNPAIRED_AT = -2;

/**
 * Finds the closing quote of a string whose content starts at `from`, judging each code unit after unescaping:
 * returns its index (`text.length` when there is none), or NUL_AT / UNPAIRED_AT.
 */
function scanString(text: string, from: number): number {
  let pendingHigh = false;
  let j = from;
  for (;;) {
    IN_STRING.lastIndex = j;
    if (!IN_STRING.test(text)) return text.length;
    const at = IN_STRING.lastIndex - 1;
    // Ordinary characters between a high surrogate and this one: the surrogate was alone.
    if (pendingHigh && at > j) return UNPAIRED_AT;
    let unit = text.charCodeAt(at);
    j = at + 1;
    if (unit === 0x22 /* " */) return pendingHigh ? UNPAIRED_AT : at;
    if (unit === 0x5c /* \ */) {
      if (text.charCodeAt(at + 1) !== 0x75 /* u */) {
        if (pendingHigh) return UNPAIRED_AT;
        j = at + 2;
        continue;
      }
      unit = hex4(text, at + 2);
      j = at + 6;
      if (unit < 0) continue; // a malformed escape: the parser says so
    }
    if (unit === 0) return NUL_AT;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      if (pendingHigh) return UNPAIRED_AT;
      pendingHigh = true;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      if (!pendingHigh) return UNPAIRED_AT;
      pendingHigh = false;
    } else if (pendingHigh) return UNPAIRED_AT;
  }
}

const NUL = 'U+0000 (NUL), which cannot be stored';
const UNPAIRED = 'an unpaired UTF-16 surrogate (half of a character), which cannot be stored';

/** The value of four hex digits at `at`, or -1. */
function hex4(text: string, at: number): number {
  let value = 0;
  for (let k = at; k < at + 4; k++) {
    const d = text.charCodeAt(k);
    const digit = d >= 0x30 && d <= 0x39 ? d - 0x30 : d >= 0x61 && d <= 0x66 ? d - 0x57 : d >= 0x41 && d <= 0x46 ? d - 0x37 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

function unescapeKey(quoted: string): string | null {
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return null; // a malformed escape: the parser says so
  }
}

/** Where the scan is: `transaction.amount`, `items.3`; a key's own problem names its object. */
function pathOf(stack: readonly Frame[], inKey: boolean, lastKey?: string): string {
  const parts: string[] = [];
  stack.forEach((frame, depth) => {
    const isLast = depth === stack.length - 1;
    if (frame.keys === null) parts.push(String(frame.index));
    else if (isLast && lastKey !== undefined) parts.push(clip(lastKey));
    else if (!(isLast && inKey) && frame.keys.size > 0) parts.push(clip(frame.last));
  });
  return parts.length > 0 ? parts.join('.') : '(body)';
}

/** Keys name fields in answers and in the quarantine: a long one is cut, never inside a character. */
function clip(key: string): string {
  if (key.length <= 64) return key;
  const end = key.charCodeAt(63) >= 0xd800 && key.charCodeAt(63) <= 0xdbff ? 63 : 64;
  return `${key.slice(0, end)}…`;
}
