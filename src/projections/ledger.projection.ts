import { sql } from 'kysely';
import { v5 as uuidv5 } from 'uuid';
import { isCalendarDate } from '../domain/calendar';
import { healStreamId } from '../domain/events';
import type { RecordedEvent } from '../domain/recorded-event';
import { decodeLedgerBatch, foldLoading } from './ledger-fold';
import { loadLedgerContext, loadWantedLines } from './ledger-load';
import { createLedgerSchema, ledgerQueryIndexes, LEDGER_TABLES } from './ledger-schema';
import { WarmBooks } from './ledger-warm';
import { LEDGER_NAMESPACE, WRITING_VERSION, writeLedgerChanges } from './ledger-write';
import type { EventSubject, Projection, SubjectHistory } from './projection';
import type { ReadModel } from './read-model';

/** An account is (bank, number); its id is a name-based UUID of that pair: opaque, URL-safe, the same on rebuild. */
export const accountIdOf = (fiId: string, accountNumber: string): string => uuidv5(`account:${fiId}:${accountNumber}`, LEDGER_NAMESPACE);

/**
 * Balances, statement lines, breaks and anomalies from BalanceChanged and ConflictingDuplicateReceived events.
 * A batch is three steps: load what it needs (ledger-load.ts), fold the typed events over that in memory, purely
 * (ledger-fold.ts, account-book.ts: the fold asks for more lines instead of reading them), write the rows that
 * changed with one statement per table (ledger-write.ts).
 */
export function createLedgerProjection(): Projection {
  const accountIds = memoisedAccountIds();
  return {
    name: 'ledger',
    // 3: the same tables; what three fold fixes derive differently (a break whose lines a re-ordered group moves
    // apart is resolved; a carry never skips the lines between two loaded islands; a conflicting repeat is filed under
    // the account of the line it contradicts, also in the same batch): deployed read models are rebuilt to match.
    // 4: accounts.version, which the statement cache validates by. 5: the period index covers the statement's figures.
    // 6: no index led by the bank date; the accounts' date gaps bound a period's instants (the period index is the
    // instant index, covering the figures); no index led by the log position but one of the late lines (the auditor's
    // view reads the others from the instant index).
    version: 6,
    eventTypes: ['BalanceChanged', 'ConflictingDuplicateReceived', 'GapHealAttempted'],
    metadataKeys: ['receivedAt'],
    tables: LEDGER_TABLES,
    createSchema: createLedgerSchema,
    queryIndexes: ledgerQueryIndexes,
    apply: (rm, events) => applyLedger(rm, events, accountIds, null),
    warm() {
      const books = new WarmBooks();
      return { apply: (rm, events) => applyLedger(rm, events, accountIds, books), forget: () => books.forget() };
    },
    subjectOf: (event) => ledgerSubjectOf(event, accountIds),
    forget: forgetAccounts,
    touch: touchAccounts,
  };
}

/** Load, fold, write; a warm writer's books learn what the batch wrote (its transaction still has to commit). */
async function applyLedger(rm: ReadModel, events: readonly RecordedEvent[], accountIds: (fiId: string, accountNumber: string) => string, books: WarmBooks | null) {
  const batch = decodeLedgerBatch(events, accountIds);
  const context = await loadLedgerContext(rm, batch, books?.known);
  const changes = await foldLoading(batch, context, (wanted) => loadWantedLines(rm, wanted));
  await writeLedgerChanges(rm, changes);
  books?.learn(changes, context);
}

/**
 * Account ids are SHA-1 based and asked for on every event, and the same few accounts come back all the time: each
 * projection instance remembers them. An id never changes, so nothing invalidates an entry; the bound only keeps
 * memory flat (ids are cheap to redo).
 */
function memoisedAccountIds(): (fiId: string, accountNumber: string) => string {
  // By bank, then by number: a key made of both would be a new string to hash on every event.
  const ids = new Map<string, Map<string, string>>();
  let size = 0;
  return (fiId, accountNumber) => {
    let ofBank = ids.get(fiId);
    if (ofBank === undefined) ids.set(fiId, (ofBank = new Map()));
    let id = ofBank.get(accountNumber);
    if (id === undefined) {
      id = accountIdOf(fiId, accountNumber);
      if (size >= 100_000) {
        ids.clear();
        ids.set(fiId, (ofBank = new Map()));
        size = 0;
      }
      ofBank.set(accountNumber, id);
      size += 1;
    }
    return id;
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The account a BalanceChanged, a conflicting repeat or a heal attempt concerns, read defensively: it may not decode. */
function ledgerSubjectOf(event: RecordedEvent, accountIds: (fiId: string, accountNumber: string) => string): EventSubject {
  const tx = event.data.transaction;
  if (tx !== null && typeof tx === 'object' && !Array.isArray(tx)) {
    const { fiId, accountNumber, transactionDate } = tx as Record<string, unknown>;
    return {
      subject: typeof fiId === 'string' && typeof accountNumber === 'string' ? accountIds(fiId, accountNumber) : null,
      transactionDate: typeof transactionDate === 'string' && isCalendarDate(transactionDate) ? transactionDate : null,
    };
  }
  const accountId = event.data.accountId;
  return { subject: typeof accountId === 'string' && UUID.test(accountId) ? accountId.toLowerCase() : null, transactionDate: null };
}

/**
 * Everything derived for some accounts: their lines, breaks, anomalies and account rows, and the conflicting repeats
 * of the transactions being retried (a repeat is filed under the account of the line it contradicts, which may only
 * exist once the retried event is applied). Heal attempts are read back from their streams (heal-<breakId>).
 */
async function forgetAccounts(rm: ReadModel, subjects: readonly string[], retried: readonly RecordedEvent[]): Promise<SubjectHistory> {
  const accounts = subjects.filter((id) => UUID.test(id));
  const txIds = retried.flatMap((e) => {
    const tx = e.data.transaction;
    const id = tx !== null && typeof tx === 'object' && !Array.isArray(tx) ? (tx as Record<string, unknown>).id : undefined;
    return typeof id === 'string' ? [id] : [];
  });
  const { db } = rm;
  const events = await db
    .selectFrom('statement_lines')
    .select(['event_id', 'log_position'])
    .where('account_id', '=', (eb) => eb.fn.any(eb.val(accounts)))
    .union(
      db
        .selectFrom('anomalies')
        .select(['event_id', 'log_position'])
        .where('kind', '=', 'conflict')
        .where((eb) => eb.or([eb('account_id', '=', eb.fn.any(eb.val(accounts))), eb('transaction_id', '=', eb.fn.any(eb.val(txIds)))])),
    )
    .execute();
  const healed = await db
    .selectFrom('breaks')
    .select('break_id')
    .where('account_id', '=', (eb) => eb.fn.any(eb.val(accounts)))
    .where('heal_attempts', '>', 0)
    .execute();
  await db.deleteFrom('statement_lines').where('account_id', '=', (eb) => eb.fn.any(eb.val(accounts))).execute();
  await db.deleteFrom('breaks').where('account_id', '=', (eb) => eb.fn.any(eb.val(accounts))).execute();
  await db
    .deleteFrom('anomalies')
    .where((eb) =>
      eb.or([
        eb('account_id', '=', eb.fn.any(eb.val(accounts))),
        eb.and([eb('kind', '=', 'conflict'), eb('transaction_id', '=', eb.fn.any(eb.val(txIds)))]),
      ]),
    )
    .execute();
  await db.deleteFrom('accounts').where('account_id', '=', (eb) => eb.fn.any(eb.val(accounts))).execute();
  return {
    events: events.map((r) => ({ eventId: r.event_id, position: r.log_position })),
    streams: healed.map((r) => healStreamId(r.break_id)),
  };
}

/** Parked events of these accounts changed (parked, retried): their statements' parked counts may have. */
async function touchAccounts(rm: ReadModel, subjects: readonly string[]): Promise<void> {
  const accounts = subjects.filter((id) => UUID.test(id));
  if (accounts.length === 0) return;
  await sql`update ${rm.table('accounts')} set version = ${WRITING_VERSION} where account_id = any(${accounts}::uuid[])`.execute(rm.db);
}
