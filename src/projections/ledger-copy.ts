/**
 * New statement lines as COPY data (ledger-write.ts sends it). COPY's binary format by default: PostgreSQL then
 * parses no text for the two uuids, two timestamps, two dates and four bigints of a line (in the text format that was
 * a third of a COPY into a table without indexes). A value that is not in the one form this encoder reads (a date not
 * written YYYY-MM-DD, a uuid not in its canonical form) sends the whole batch in the text format instead, so that
 * PostgreSQL's own parsing decides as it always did. Text PostgreSQL cannot store fails the batch in both formats, as
 * it does in a JSON parameter (the event is parked either way): a NUL, or a half surrogate, which encoding would
 * silently turn into U+FFFD.
 */
import { daysSince1970, utcMillisSince1970 } from '../domain/calendar';
import type { BookLine } from './account-book';
import type { AccountChanges } from './ledger-fold';
import type { LedgerTables } from './tables';

export const LINE_COLUMNS = [
  'transaction_id', 'account_id', 'event_id', 'instant', 'group_seq', 'transaction_date', 'transaction_date_time', 'booking_date',
  'amount', 'running_balance', 'balance_before', 'balance_after', 'description', 'reference', 'counter_account_number',
  'counter_account_name', 'counter_account_bank_name', 'virtual_account_number', 'virtual_account_name', 'payment_channel',
  'late', 'received_at', 'source', 'log_position',
] as const satisfies readonly (keyof LedgerTables['statement_lines'])[];

export type Value = string | number | boolean | null;

/** Money (or a missing running balance) as the text a row of the read model holds. */
export const text = (v: bigint | null) => (v === null ? null : v.toString());
export const iso = (ms: number) => new Date(ms).toISOString();

/** A new line's columns in LINE_COLUMNS order (money and instants as text). */
export function lineValues(accountId: string, l: BookLine): Value[] {
  const d = l.details;
  return [
    l.id, accountId, l.eventId, iso(l.instant), l.seq, l.transactionDate, d.transactionDateTime, d.bookingDate,
    l.amount.toString(), text(l.runningBalance), text(l.before), text(l.after), d.description, d.reference, d.counterAccountNumber,
    d.counterAccountName, d.counterAccountBankName, d.virtualAccountNumber, d.virtualAccountName, d.paymentChannel,
    l.late, l.receivedAt, l.source, d.logPosition,
  ];
}

export interface CopyData {
  readonly format: 'binary' | 'text';
  readonly data: Uint8Array;
}

/** A batch's new lines (`count` of them) as COPY data: binary when every value has the form the encoder reads. */
export function copyLines(accounts: readonly AccountChanges[], count: number): CopyData {
  try {
    return { format: 'binary', data: binaryCopyData(accounts, count) };
  } catch (error) {
    if (!(error instanceof NotCanonical)) throw error;
    return { format: 'text', data: textCopyData(accounts, count) };
  }
}

const CANNOT_STORE = 'a statement line holds text PostgreSQL cannot store (a NUL or a half surrogate)';

/** A value the binary encoder does not read: the batch goes in the text format. */
class NotCanonical extends Error {
  override readonly name = 'NotCanonical';
}

/**
 * Rows in COPY's binary format: a header, then per row its field count and each field as a length (-1 for NULL) and
 * its bytes in the column type's binary form (uuid 16 bytes, timestamptz microseconds and date days since 2000-01-01,
 * integers big-endian, text as UTF-8), then -1.
 */
export function binaryCopyData(accounts: readonly AccountChanges[], count: number): Uint8Array {
  const out = new CopyBuffer(count * 400);
  out.bytesOf(BINARY_HEADER);
  for (const { account, added } of accounts) {
    for (const l of added) {
      const d = l.details;
      out.int16(LINE_COLUMNS.length);
      out.utf8(l.id);
      out.uuid(account.accountId);
      out.uuid(l.eventId);
      out.timestamp(l.instant);
      out.int32Field(l.seq);
      out.date(l.transactionDate);
      out.utf8(d.transactionDateTime);
      out.date(d.bookingDate);
      out.int64(l.amount);
      out.int64(l.runningBalance);
      out.int64(l.before);
      out.int64(l.after);
      out.utf8(d.description);
      out.utf8(d.reference);
      out.utf8(d.counterAccountNumber);
      out.utf8(d.counterAccountName);
      out.utf8(d.counterAccountBankName);
      out.utf8(d.virtualAccountNumber);
      out.utf8(d.virtualAccountName);
      out.utf8(d.paymentChannel);
      out.bool(l.late);
      out.timestamp(instantOf(l.receivedAt));
      out.utf8(l.source);
      out.utf8(d.logPosition);
    }
  }
  out.int16(-1);
  return out.bytes();
}

/** Rows in COPY's text format, encoded value by value into one buffer (the format for what binary does not read). */
export function textCopyData(accounts: readonly AccountChanges[], count: number): Uint8Array {
  const out = new CopyBuffer(count * 512);
  for (const { account, added } of accounts) {
    for (const line of added) {
      // Made and written one line at a time, so that a line's values die young instead of outliving the batch.
      const values = lineValues(account.accountId, line);
      for (let i = 0; i < values.length; i++) {
        if (i > 0) out.byte(TAB);
        copyValue(out, values[i]!);
      }
      out.byte(NEWLINE);
    }
  }
  return out.bytes();
}

function copyValue(out: CopyBuffer, v: Value): void {
  if (v === null) out.ascii('\\N');
  else if (typeof v === 'string') {
    if (!v.isWellFormed()) throw new Error(CANNOT_STORE);
    if (!COPY_SPECIAL.test(v)) out.text(v);
    else if (v.includes('\u0000')) throw new Error(CANNOT_STORE);
    else out.text(v.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c]!));
  } else out.ascii(typeof v === 'boolean' ? (v ? 't' : 'f') : String(v));
}

const TAB = 0x09;
const NEWLINE = 0x0a;
const COPY_SPECIAL = /[\\\t\n\r\u0000]/;
const COPY_SPECIALS = /[\\\t\n\r]/g;
const COPY_ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** 'PGCOPY\n\377\r\n\0', no flags, no header extension. */
const BINARY_HEADER = Uint8Array.of(0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0);
/** 2000-01-01T00:00:00Z, PostgreSQL's epoch for timestamps and dates, in milliseconds since 1970. */
const POSTGRES_EPOCH_MS = 946_684_800_000;
/** Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01. */
const POSTGRES_EPOCH_DAYS = 10_957;
const TWO_32 = 2 ** 32;
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/** A received-at instant (the fold makes every one ISO in UTC with milliseconds), in milliseconds since 1970. */
function instantOf(textual: string): number {
  const ms = utcMillisSince1970(textual);
  if (ms === null) throw new NotCanonical(textual);
  return ms;
}

/** The value of a hexadecimal digit's character code, or -1. */
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) (HEX[0x41 + i] = 10 + i), (HEX[0x61 + i] = 10 + i);
const hexAt = (s: string, i: number): number => {
  const c = s.charCodeAt(i);
  const v = c < 128 ? HEX[c]! : -1;
  if (v < 0) throw new NotCanonical(s);
  return v;
};

const viewOf = (b: Buffer) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** A growing byte buffer: each value is encoded into it in place (three bytes at most per UTF-16 code unit). */
class CopyBuffer {
  private buf: Buffer;
  /** The same bytes, for int8: DataView's setBigInt64 costs a sixth of Buffer's writeBigInt64BE (made of BigInt steps). */
  private view: DataView;
  private at = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(Math.max(size, 1024));
    this.view = viewOf(this.buf);
  }
  byte(b: number): void {
    this.room(1);
    this.buf[this.at++] = b;
  }
  bytesOf(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buf.set(bytes, this.at);
    this.at += bytes.length;
  }
  ascii(s: string): void {
    this.room(s.length);
    this.at += this.buf.write(s, this.at, 'latin1');
  }
  text(s: string): void {
    this.room(s.length * 3);
    this.at += this.buf.write(s, this.at, 'utf8');
  }
  int16(v: number): void {
    this.room(2);
    this.at = this.buf.writeInt16BE(v, this.at);
  }
  nullField(): void {
    this.room(4);
    this.at = this.buf.writeInt32BE(-1, this.at);
  }
  int32Field(v: number): void {
    this.room(8);
    this.at = this.buf.writeInt32BE(4, this.at);
    this.at = this.buf.writeInt32BE(v, this.at);
  }
  bool(v: boolean): void {
    this.room(5);
    this.at = this.buf.writeInt32BE(1, this.at);
    this.buf[this.at++] = v ? 1 : 0;
  }
  /** int8; a number out of its range goes in text, so that PostgreSQL refuses it with its own words as before. */
  int64(v: bigint | null): void {
    if (v === null) return this.nullField();
    if (v > INT64_MAX || v < INT64_MIN) throw new NotCanonical(String(v));
    this.room(12);
    this.at = this.buf.writeInt32BE(8, this.at);
    this.view.setBigInt64(this.at, v);
    this.at += 8;
  }
  /** timestamptz from milliseconds since 1970: microseconds since 2000 (exact in a double up to the year 2285). */
  timestamp(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError('Invalid time value'); // as the text format's toISOString
    const micros = (ms - POSTGRES_EPOCH_MS) * 1000;
    if (!Number.isSafeInteger(micros)) throw new NotCanonical(String(ms));
    this.int64Number(micros);
  }
  /** date from YYYY-MM-DD (a day that exists, from the year 100: Date.UTC reads 0–99 as 1900–1999): days since 2000. */
  date(v: string | null): void {
    if (v === null) return this.nullField();
    const days = daysSince1970(v);
    if (days === null || v < '0100') throw new NotCanonical(v);
    this.room(8);
    this.at = this.buf.writeInt32BE(4, this.at);
    this.at = this.buf.writeInt32BE(days - POSTGRES_EPOCH_DAYS, this.at);
  }
  /** uuid in its canonical form (hex digits in either case, dashes at 8, 13, 18, 23): its 16 bytes. */
  uuid(s: string): void {
    if (s.length !== 36 || s[8] !== '-' || s[13] !== '-' || s[18] !== '-' || s[23] !== '-') throw new NotCanonical(s);
    this.room(20);
    const b = this.buf;
    this.at = b.writeInt32BE(16, this.at);
    for (let i = 0; i < 36; i += 2) {
      if (i === 8 || i === 13 || i === 18 || i === 23) i++;
      b[this.at++] = (hexAt(s, i) << 4) | hexAt(s, i + 1);
    }
  }
  /**
   * text as its length and UTF-8 bytes, encoded here in one pass that also refuses a NUL and a half surrogate (a
   * binary value needs no escapes). Short strings are most of a line: a loop costs less than a call into the encoder.
   */
  utf8(s: string | null): void {
    if (s === null) return this.nullField();
    const n = s.length;
    this.room(4 + n * 3);
    const b = this.buf;
    const start = this.at + 4;
    let p = start;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) {
        if (c === 0) throw new Error(CANNOT_STORE);
        b[p++] = c;
      } else if (c < 0x800) {
        b[p++] = 0xc0 | (c >> 6);
        b[p++] = 0x80 | (c & 0x3f);
      } else if (c < 0xd800 || c > 0xdfff) {
        b[p++] = 0xe0 | (c >> 12);
        b[p++] = 0x80 | ((c >> 6) & 0x3f);
        b[p++] = 0x80 | (c & 0x3f);
      } else {
        const low = s.charCodeAt(i + 1); // NaN past the end
        if (c > 0xdbff || !(low >= 0xdc00 && low <= 0xdfff)) throw new Error(CANNOT_STORE);
        const cp = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
        b[p++] = 0xf0 | (cp >> 18);
        b[p++] = 0x80 | ((cp >> 12) & 0x3f);
        b[p++] = 0x80 | ((cp >> 6) & 0x3f);
        b[p++] = 0x80 | (cp & 0x3f);
      }
    }
    this.buf.writeInt32BE(p - start, this.at);
    this.at = p;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }
  private int64Number(v: number): void {
    this.room(12);
    const high = Math.floor(v / TWO_32);
    this.at = this.buf.writeInt32BE(8, this.at);
    this.at = this.buf.writeInt32BE(high, this.at);
    this.at = this.buf.writeUInt32BE(v - high * TWO_32, this.at);
  }
  private room(need: number): void {
    if (this.at + need <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + need));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
    this.view = viewOf(next);
  }
}
