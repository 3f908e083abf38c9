/**
 * The ledger projection's fold, pure: typed events and the context a batch loaded (ledger-load.ts) in, the rows
 * that change out (ledger-write.ts writes them) — or, when a carry or a same-instant group runs past the loaded
 * lines, the lines it wants; the caller loads them and folds again. Nothing here awaits, reads a clock or a table.
 */
import type { JsonObject } from '../domain/bank-transaction';
import { isoInstant } from '../domain/calendar';
import { decodeEvent, moneyFromJson, optionalMoneyFromJson } from '../domain/event-codec';
import type { RecordedEvent } from '../domain/recorded-event';
import { AccountBook, type BookLine, type BreakState, type LineFacts, type LinesWanted, type StoredLine, type StoredRun } from './account-book';

/** A BalanceChanged, as the fold needs it. */
export interface Booking {
  readonly kind: 'booking';
  readonly accountId: string;
  readonly account: NewAccount;
  readonly line: LineFacts;
  readonly position: string;
}

/**
 * A ConflictingDuplicateReceived: the first version stays; the repeat is an anomaly of the account it contradicts.
 * Its `accountId` is the account the repeat itself names (the line it contradicts decides, when there is one).
 */
export interface ConflictingRepeat extends Omit<Anomaly, 'kind'> {
  readonly kind: 'conflict';
}

/** A GapHealAttempted: recorded on its break once the transactions it recovered are booked. */
export interface HealAttempt {
  readonly breakId: string;
  readonly eventId: string;
  readonly at: string;
  readonly outcome: string;
  readonly detail: string | null;
}

export interface LedgerBatch {
  /** Bookings and conflicting repeats, in log order. */
  readonly items: readonly (Booking | ConflictingRepeat)[];
  readonly heals: readonly HealAttempt[];
}

/** What an account's first booking says about it. */
export interface NewAccount {
  readonly fiId: string;
  readonly fiName: string | null;
  readonly accountNumber: string;
  readonly currency: string;
  readonly grantId: string | null;
  readonly firstSeenAt: string;
}

/** An account row as the fold reads and writes it. */
export interface AccountState extends NewAccount {
  readonly accountId: string;
  readonly balance: bigint | null;
  readonly lastTransactionId: string | null;
  /** Milliseconds since the epoch. */
  readonly lastTransactionAt: number | null;
  readonly lastTransactionDateTime: string | null;
  readonly lineCount: bigint;
  readonly openBreaks: number;
  readonly lateDeliveries: number;
}

export type StoredBreak = Omit<BreakState, 'dirty'>;

/** What one account's fold starts from: its row, the stored lines loaded around the batch, its open breaks. */
export interface AccountContext {
  readonly state: AccountState | null;
  readonly runs: readonly StoredRun[];
  readonly openBreaks: readonly StoredBreak[];
}

export interface LedgerContext {
  readonly accounts: ReadonlyMap<string, AccountContext>;
  /** The account of each stored line a conflicting repeat of the batch contradicts. */
  readonly linesOfConflicts: ReadonlyMap<string, string>;
}

export interface Anomaly {
  readonly kind: 'late' | 'conflict';
  readonly accountId: string;
  readonly transactionId: string;
  readonly eventId: string;
  readonly receivedAt: string;
  readonly source: string;
  readonly details: Readonly<Record<string, string | null>>;
  readonly position: string;
}

/** What a batch changes in one account. */
export interface AccountChanges {
  readonly account: AccountState;
  /** The account's row was in the tables when the batch loaded it (else the batch creates it). */
  readonly stored: boolean;
  /** Lines the batch added: inserted. */
  readonly added: readonly BookLine[];
  /** Stored lines whose order or balances changed: updated. */
  readonly moved: readonly BookLine[];
  /** Breaks opened or resolved. */
  readonly breaks: readonly BreakState[];
  readonly late: readonly Anomaly[];
}

export interface LedgerChanges {
  readonly accounts: readonly AccountChanges[];
  readonly conflicts: readonly Anomaly[];
  readonly heals: readonly HealAttempt[];
}

export type AccountFold =
  | { readonly kind: 'folded'; readonly changes: AccountChanges | null }
  | { readonly kind: 'wants'; readonly wanted: LinesWanted };

export type LedgerFold =
  | { readonly kind: 'folded'; readonly changes: LedgerChanges }
  /** Lines to load before folding again; `settled` holds the accounts that need nothing more (pass it back). */
  | { readonly kind: 'wants'; readonly wanted: readonly LinesWanted[]; readonly settled: ReadonlyMap<string, AccountChanges | null> };

/** Lines read after each new transaction's instant when it is not an append; more only when a carry runs on. */
export const WINDOW = 32;

/**
 * Decodes a batch: the ledger's events, typed, in log order. `accountIdOf` names an account (a name-based UUID,
 * memoised by the projection instance).
 */
export function decodeLedgerBatch(events: readonly RecordedEvent[], accountIdOf: (fiId: string, accountNumber: string) => string): LedgerBatch {
  const items: (Booking | ConflictingRepeat)[] = [];
  const heals: HealAttempt[] = [];
  for (const event of events) {
    if (event.type === 'BalanceChanged') {
      items.push(bookingOf(event, accountIdOf));
      continue;
    }
    const decoded = decodeEvent(event.type, event.data);
    if (decoded?.type === 'GapHealAttempted') {
      const { breakId, outcome, detail } = decoded.data;
      heals.push({ breakId, eventId: event.eventId, at: receivedAtOf(event), outcome, detail });
      continue;
    }
    if (decoded?.type !== 'ConflictingDuplicateReceived') continue;
    const tx = decoded.data.transaction;
    const accountId = accountIdOf(tx.fiId, tx.accountNumber);
    const receivedAt = receivedAtOf(event);
    items.push({
      kind: 'conflict',
      accountId,
      transactionId: tx.id,
      eventId: event.eventId,
      receivedAt,
      source: decoded.data.source,
      details: {
        originalEventId: String(event.data.originalEventId ?? ''),
        amount: tx.amount.toString(),
        runningBalance: tx.runningBalance?.toString() ?? null,
        transactionDateTime: tx.transactionDateTime,
      },
      position: event.position,
    });
  }
  return { items, heals };
}

/** What the load step reads for a batch, once it has the accounts' rows. */
export interface LoadPlan {
  /** Accounts whose new transactions all come after their last line: that line is all the context they need. */
  readonly tails: readonly { readonly accountId: string; readonly transactionId: string }[];
  /** For each new transaction of the other accounts: the line before its instant and WINDOW lines from it on. */
  readonly islands: readonly { readonly accountId: string; readonly instant: number }[];
  /** Accounts with open breaks. */
  readonly breaks: readonly string[];
  /** Transactions whose conflicting repeats the batch holds. */
  readonly conflicts: readonly string[];
}

/** The accounts whose rows a batch needs. */
export function bookedAccounts(batch: LedgerBatch): string[] {
  const ids = new Set<string>();
  for (const item of batch.items) if (item.kind === 'booking') ids.add(item.accountId);
  return [...ids];
}

export function planLoads(batch: LedgerBatch, states: ReadonlyMap<string, AccountState>): LoadPlan {
  const earliest = new Map<string, number>();
  for (const item of batch.items) {
    if (item.kind === 'booking') earliest.set(item.accountId, Math.min(earliest.get(item.accountId) ?? Infinity, item.line.instant));
  }
  const appendsOnly = new Set(
    [...earliest].filter(([id, instant]) => {
      const state = states.get(id);
      return !state || (state.lastTransactionAt !== null && instant > state.lastTransactionAt);
    }).map(([id]) => id),
  );
  const islands = new Map<string, { accountId: string; instant: number }>();
  for (const item of batch.items) {
    if (item.kind === 'booking' && !appendsOnly.has(item.accountId)) {
      islands.set(`${item.accountId}@${item.line.instant}`, { accountId: item.accountId, instant: item.line.instant });
    }
  }
  return {
    tails: [...appendsOnly].flatMap((accountId) => {
      const transactionId = states.get(accountId)?.lastTransactionId;
      return transactionId ? [{ accountId, transactionId }] : [];
    }),
    islands: [...islands.values()],
    breaks: [...states.values()].filter((s) => s.openBreaks > 0).map((s) => s.accountId),
    conflicts: [...new Set(batch.items.flatMap((i) => (i.kind === 'conflict' ? [i.transactionId] : [])))],
  };
}

/**
 * The run an island query returns: the line before the instant, then up to `window` lines from it on. A window of at
 * least one line keeps the new transaction's neighbours known: the line before it and the one it goes before.
 */
export const islandRun = (prev: StoredLine | null, from: readonly StoredLine[], window = WINDOW): StoredRun => ({
  lines: prev ? [prev, ...from] : [...from],
  complete: from.length < window,
});

/** The run a request for more lines returns: the line asked after, then what follows it. */
export const continuationRun = (after: StoredLine, more: readonly StoredLine[], wanted: LinesWanted): StoredRun => ({
  lines: [after, ...more],
  complete: more.length < wanted.limit,
});

/** The context with more stored lines for some accounts. */
export function withRuns(context: LedgerContext, runs: readonly { readonly accountId: string; readonly run: StoredRun }[]): LedgerContext {
  const accounts = new Map(context.accounts);
  for (const { accountId, run } of runs) {
    const current = accounts.get(accountId) ?? { state: null, runs: [], openBreaks: [] };
    accounts.set(accountId, { ...current, runs: [...current.runs, run] });
  }
  return { ...context, accounts };
}

/**
 * The fold of a batch over its context. Accounts are independent: each is folded on its own, and only those that
 * want lines are folded again (from scratch, with the lines added) once they are loaded.
 */
export function foldLedger(batch: LedgerBatch, context: LedgerContext, settled: ReadonlyMap<string, AccountChanges | null> = new Map()): LedgerFold {
  const bookings = new Map<string, Booking[]>();
  for (const item of batch.items) {
    if (item.kind !== 'booking' || settled.has(item.accountId)) continue;
    const list = bookings.get(item.accountId);
    if (list) list.push(item);
    else bookings.set(item.accountId, [item]);
  }
  const done = new Map(settled);
  const wanted: LinesWanted[] = [];
  for (const [accountId, mine] of bookings) {
    const fold = foldAccount(accountId, context.accounts.get(accountId), mine);
    if (fold.kind === 'wants') wanted.push(fold.wanted);
    else done.set(accountId, fold.changes);
  }
  if (wanted.length > 0) return { kind: 'wants', wanted, settled: done };
  return {
    kind: 'folded',
    changes: {
      accounts: [...done.values()].filter((c): c is AccountChanges => c !== null),
      conflicts: conflictsOf(batch, context),
      heals: batch.heals,
    },
  };
}

/** Folds, loading what the fold wants between rounds: the only place where the fold and the loader meet. */
export async function foldLoading(
  batch: LedgerBatch,
  context: LedgerContext,
  load: (wanted: readonly LinesWanted[]) => Promise<readonly { readonly accountId: string; readonly run: StoredRun }[]>,
): Promise<LedgerChanges> {
  let fold = foldLedger(batch, context);
  while (fold.kind === 'wants') {
    context = withRuns(context, await load(fold.wanted));
    fold = foldLedger(batch, context, fold.settled);
  }
  return fold.changes;
}

/** One account: its bookings in log order over a book of its context. Null changes: nothing new (replays only). */
export function foldAccount(accountId: string, context: AccountContext | undefined, bookings: readonly Booking[]): AccountFold {
  const book = new AccountBook(accountId, context?.runs ?? [], context?.openBreaks ?? []);
  const late: Anomaly[] = [];
  for (const { line: facts, position } of bookings) {
    const outcome = book.insert(facts);
    if (outcome.kind === 'wants') return outcome;
    if (outcome.kind === 'replayed' || !outcome.late) continue;
    late.push({
      kind: 'late',
      accountId,
      transactionId: facts.id,
      eventId: facts.eventId,
      receivedAt: facts.receivedAt,
      source: facts.source,
      details: { followingTransactionId: outcome.next?.id ?? null, transactionDateTime: facts.details.transactionDateTime },
      position,
    });
  }
  if (book.inserted === 0) return { kind: 'folded', changes: null };
  const state = context?.state ?? { ...bookings[0]!.account, ...EMPTY_ACCOUNT, accountId };
  const tail = book.tail();
  const dirty = book.lines.filter((l) => l.dirty);
  return {
    kind: 'folded',
    changes: {
      stored: context?.state != null,
      account: {
        ...state,
        ...(tail
          ? { balance: tail.after, lastTransactionId: tail.id, lastTransactionAt: tail.instant, lastTransactionDateTime: tail.details.transactionDateTime }
          : {}),
        lineCount: state.lineCount + BigInt(book.inserted),
        openBreaks: book.openBreakCount,
        lateDeliveries: state.lateDeliveries + late.length,
      },
      added: dirty.filter((l) => !l.stored),
      moved: dirty.filter((l) => l.stored),
      breaks: [...book.openBreaks, ...book.closedBreaks].filter((b) => b.dirty),
      late,
    },
  };
}

const EMPTY_ACCOUNT = {
  balance: null,
  lastTransactionId: null,
  lastTransactionAt: null,
  lastTransactionDateTime: null,
  lineCount: 0n,
  openBreaks: 0,
  lateDeliveries: 0,
} as const;

/**
 * A conflicting repeat is filed under the account of the line it contradicts: booked earlier in this batch (the
 * original always precedes its repeats in the log), or stored before it; else under the account it names.
 */
function conflictsOf(batch: LedgerBatch, context: LedgerContext): Anomaly[] {
  if (!batch.items.some((i) => i.kind === 'conflict')) return [];
  const booked = new Map<string, string>();
  const conflicts: Anomaly[] = [];
  for (const item of batch.items) {
    if (item.kind === 'booking') {
      if (!booked.has(item.line.id)) booked.set(item.line.id, item.accountId);
      continue;
    }
    const { kind: _kind, accountId, ...anomaly } = item;
    const owner = booked.get(item.transactionId) ?? context.linesOfConflicts.get(item.transactionId) ?? accountId;
    conflicts.push({ kind: 'conflict', accountId: owner, ...anomaly });
  }
  return conflicts;
}

/**
 * A BalanceChanged read straight from the event's JSON into the booking (the codec's reading: money from decimal
 * strings, a missing running balance or grant as null), without first copying the whole transaction into a decoded
 * event: a batch's events are the young objects each scavenge copies, and this was one more of them per event.
 */
function bookingOf(event: RecordedEvent, accountIdOf: (fiId: string, accountNumber: string) => string): Booking {
  const { data } = event;
  const tx = data.transaction as JsonObject;
  const fiId = tx.fiId as string;
  const accountNumber = tx.accountNumber as string;
  const transactionDateTime = tx.transactionDateTime as string;
  const receivedAt = receivedAtOf(event);
  const source = data.source as string;
  return {
    kind: 'booking',
    accountId: accountIdOf(fiId, accountNumber),
    account: {
      fiId,
      fiName: tx.fiName as string | null,
      accountNumber,
      currency: tx.currency as string,
      grantId: (data.grantId as string | null) ?? null,
      firstSeenAt: receivedAt,
    },
    line: {
      id: tx.id as string,
      eventId: event.eventId,
      instant: Date.parse(transactionDateTime),
      amount: moneyFromJson(tx.amount),
      runningBalance: optionalMoneyFromJson(tx.runningBalance),
      transactionDate: tx.transactionDate as string,
      receivedAt,
      source,
      details: {
        transactionDateTime,
        bookingDate: tx.bookingDate as string | null,
        description: tx.description as string | null,
        reference: tx.reference as string | null,
        counterAccountNumber: tx.counterAccountNumber as string | null,
        counterAccountName: tx.counterAccountName as string | null,
        counterAccountBankName: tx.counterAccountBankName as string | null,
        virtualAccountNumber: tx.virtualAccountNumber as string | null,
        virtualAccountName: tx.virtualAccountName as string | null,
        paymentChannel: tx.paymentChannel as string | null,
        logPosition: event.position,
      },
    },
    position: event.position,
  };
}

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** When Cas's delivery reached us; the log's own timestamp for events written before receivedAt existed. */
function receivedAtOf(event: RecordedEvent): string {
  const stated = event.metadata.receivedAt;
  if (typeof stated !== 'string') return event.recordedAt.toISOString();
  return ISO_UTC.test(stated) ? stated : isoInstant(stated);
}
