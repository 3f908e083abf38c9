import { PassThrough } from 'node:stream';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { exportStatement, type LineView, type ReadModels, type Statement } from '../../projections/ledger.queries';

/** text/csv wins when the client names it and does not rank application/json above it. */
export function prefersCsv(accept: string | undefined): boolean {
  if (!accept) return false;
  const weight = (type: string) =>
    Math.max(
      -1,
      ...accept.split(',').flatMap((range) => {
        const [media = '', ...params] = range.split(';').map((p) => p.trim().toLowerCase());
        if (media !== type) return [];
        const q = params.find((p) => p.startsWith('q='));
        return [q ? Number.parseFloat(q.slice(2)) || 0 : 1];
      }),
    );
  const csv = weight('text/csv');
  return csv > 0 && csv >= weight('application/json');
}

const CSV_COLUMNS = [
  'row',
  'transactionId',
  'transactionDate',
  'transactionDateTime',
  'bookingDate',
  'amount',
  'balanceBefore',
  'balanceAfter',
  'runningBalance',
  'description',
  'reference',
  'counterAccountNumber',
  'counterAccountName',
  'counterAccountBankName',
  'virtualAccountNumber',
  'late',
  'eventId',
] as const;
type CsvRow = Partial<Record<(typeof CSV_COLUMNS)[number], string | null>>;

/** Text a spreadsheet would run as a formula (=, +, -, @ first) is kept as text by a leading '. */
const inert = (value: string) => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value);

const TEXT_COLUMNS = new Set<string>([
  'transactionId',
  'description',
  'reference',
  'counterAccountNumber',
  'counterAccountName',
  'counterAccountBankName',
  'virtualAccountNumber',
]);

/** Resolves when the stream wants more, rejects when it was closed first (the client went away). */
function drained(stream: PassThrough): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => (stop(), resolve());
    const onClose = () => (stop(), reject(new Error('the client went away')));
    const stop = () => (stream.off('drain', onDrain), stream.off('close', onClose));
    stream.on('drain', onDrain);
    stream.on('close', onClose);
  });
}

/** RFC 4180 quoting by csv-stringify; the header goes before the first rows only, so chunks concatenate to one CSV. */
const csvText = (rows: readonly CsvRow[], header: boolean): string =>
  stringifyCsv(rows as CsvRow[], { header, columns: [...CSV_COLUMNS], record_delimiter: 'windows' });

const lineRow = (l: LineView): CsvRow => {
  const row: CsvRow = { row: 'line', ...l, late: String(l.late) };
  return Object.fromEntries(Object.entries(row).map(([c, v]) => [c, typeof v === 'string' && TEXT_COLUMNS.has(c) ? inert(v) : v]));
};

/**
 * The statement CSV, streamed: the BOM (spreadsheet programs then read UTF-8, Vietnamese, correctly), a header row
 * and the opening balance, every line of the period chunk by chunk as exportStatement reads them (one snapshot),
 * then the closing balance. A slow client holds the reading back; memory stays at one chunk. Null for an unknown
 * account (nothing has been sent then). A failure after the first bytes cuts the response short: the closing row
 * is missing, so a truncated file is never mistaken for a whole one.
 */
export async function streamStatementCsv(
  readModels: ReadModels,
  accountId: string,
  period: { from: string; to: string },
  log: { warn(obj: object, msg: string): void },
): Promise<{ body: PassThrough; accountNumber: string } | null> {
  const body = new PassThrough();
  const write = async (text: string) => {
    if (body.destroyed) throw new Error('the client went away');
    if (!body.write(text)) await drained(body);
  };
  let started!: (head: Statement | null) => void;
  const head = new Promise<Statement | null>((resolve) => (started = resolve));
  const done = exportStatement(readModels, accountId, period, {
    async head(s) {
      await write(`\uFEFF${csvText([{ row: 'opening', transactionDate: s.from, balanceAfter: s.openingBalance, description: 'Opening balance' }], true)}`);
      started(s);
    },
    async lines(lines) {
      if (lines.length > 0) await write(csvText(lines.map(lineRow), false));
    },
  });
  const outcome = done.then(
    async (found) => {
      if (!found) return started(null);
      const s = await head;
      body.end(csvText([{ row: 'closing', transactionDate: s!.to, balanceAfter: s!.closingBalance, description: 'Closing balance' }], false));
    },
    (error: unknown) => {
      log.warn({ err: error, accountId }, 'statement CSV cut short');
      body.destroy(error instanceof Error ? error : new Error(String(error)));
      throw error;
    },
  );
  // Before the first bytes a failure is the request's (503 when the store is down); after them it only ends the stream.
  const first = await Promise.race([head, outcome.then(() => head)]);
  outcome.catch(() => {});
  return first ? { body, accountNumber: first.account.accountNumber } : null;
}
