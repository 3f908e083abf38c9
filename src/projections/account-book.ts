import { balancesOf, type ChainTransaction, missingBetween, orderSameInstant } from '../domain/chain';

/** A transaction as the book places it. */
export interface LineFacts extends ChainTransaction {
  readonly eventId: string;
  readonly transactionDate: string;
  readonly receivedAt: string;
  readonly source: string;
  /** Statement columns the chain does not look at, carried through as they are stored. */
  readonly details: LineDetails;
}

export interface LineDetails {
  readonly transactionDateTime: string;
  readonly bookingDate: string | null;
  readonly description: string | null;
  readonly reference: string | null;
  readonly counterAccountNumber: string | null;
  readonly counterAccountName: string | null;
  readonly counterAccountBankName: string | null;
  readonly virtualAccountNumber: string | null;
  readonly virtualAccountName: string | null;
  readonly paymentChannel: string | null;
  readonly logPosition: string;
}

/** A line as the read model holds it. */
export interface StoredLine extends LineFacts {
  readonly seq: number;
  readonly before: bigint | null;
  readonly after: bigint | null;
  readonly late: boolean;
}

/** Stored lines that follow one another with nothing between; `complete` when the last of them is the account's last. */
export interface StoredRun {
  readonly lines: readonly StoredLine[];
  readonly complete: boolean;
}

export interface BookLine extends LineFacts {
  seq: number;
  before: bigint | null;
  after: bigint | null;
  late: boolean;
  /** True when the store may hold lines between this line and the next one in memory (not loaded). */
  frontierAfter: boolean;
  /** Changed by this batch: a new line is inserted, a stored one updated. */
  dirty: boolean;
  /** False for a line this batch added. */
  readonly stored: boolean;
}

export interface BreakState {
  readonly afterTransactionId: string;
  readonly beforeTransactionId: string;
  readonly missingAmount: bigint;
  readonly openedAt: string;
  readonly openedByEventId: string;
  status: 'open' | 'resolved';
  resolvedAt: string | null;
  resolvedByEventId: string | null;
  resolvedBySource: string | null;
  resolution: 'filled' | 'narrowed' | 'reordered' | null;
  /** Opened or resolved by this batch. */
  dirty: boolean;
}

/** The stored lines that follow `afterTransactionId` (a stored line), `limit` of them at most, are needed to go on. */
export interface LinesWanted {
  readonly accountId: string;
  readonly afterTransactionId: string;
  readonly limit: number;
}

export type InsertOutcome =
  | { readonly kind: 'inserted'; readonly line: BookLine; readonly late: boolean; readonly next: BookLine | null }
  /** The transaction is already in the statement: replaying an event changes nothing. */
  | { readonly kind: 'replayed' }
  | { readonly kind: 'wants'; readonly wanted: LinesWanted };

/** The least a request for more lines asks for; it grows with the book, so a long carry needs few rounds. */
const LINES_PER_REQUEST = 64;

/**
 * One account's statement lines as far as a projection batch knows them: an ordered, in-memory window over the
 * account's stored lines (the runs the batch loaded around its new transactions), changed in memory by `insert`.
 * Pure and synchronous: when a carry or a same-instant group runs past what was loaded, `insert` says which lines it
 * wants instead of fetching them, and the fold is run again from a context that holds them (ledger-fold.ts). The
 * work for one transaction is bounded by its same-instant group and the lines whose derived balances it changes,
 * never by the account's history.
 */
export class AccountBook {
  readonly lines: BookLine[] = [];
  private readonly byId = new Map<string, BookLine>();
  /** Open breaks by pair, and by their two lines: a line is the left (right) of at most one open break. */
  private readonly open = new Map<string, BreakState>();
  private readonly openByLeft = new Map<string, BreakState>();
  private readonly openByRight = new Map<string, BreakState>();
  readonly closedBreaks: BreakState[] = [];
  inserted = 0;

  /** A book over the stored runs (in any order, overlapping or not) and the account's open breaks. */
  constructor(
    readonly accountId: string,
    runs: readonly StoredRun[],
    openBreaks: readonly Omit<BreakState, 'dirty'>[],
  ) {
    const continued = new Set<string>();
    for (const run of runs) {
      run.lines.forEach((line, i) => {
        if (i < run.lines.length - 1 || run.complete) continued.add(line.id);
        if (!this.byId.has(line.id)) {
          const placed = bookLine(line, line, true);
          this.byId.set(line.id, placed);
          this.lines.push(placed);
        }
      });
    }
    this.lines.sort((a, b) => a.instant - b.instant || a.seq - b.seq);
    for (const line of this.lines) line.frontierAfter = !continued.has(line.id);
    for (const b of openBreaks) if (!this.open.has(pairKey(b))) this.track({ ...b, dirty: false });
  }

  get openBreaks(): BreakState[] {
    return [...this.open.values()];
  }

  get openBreakCount(): number {
    return this.open.size;
  }

  /** The account's last line, when the book reaches it. */
  tail(): BookLine | null {
    const last = this.lines[this.lines.length - 1];
    return last && !last.frontierAfter ? last : null;
  }

  /**
   * Puts a transaction in its place, re-orders its same-instant group, carries balances on and reconciles breaks.
   * After `wants` the book is half changed and must be dropped: the fold starts again with the lines asked for.
   */
  insert(facts: LineFacts): InsertOutcome {
    const at = this.lowerBound(facts.instant);
    if (this.lines[at]?.instant === facts.instant) {
      const end = this.groupEnd(at);
      if (typeof end !== 'number') return { kind: 'wants', wanted: end };
    }
    if (this.byId.has(facts.id)) return { kind: 'replayed' };
    const prev = this.lines[at - 1] ?? null;
    // The load step brings the line before each new instant with its successor, so this holds; checked all the same.
    if (prev?.frontierAfter && this.lines[at]?.instant !== facts.instant) return { kind: 'wants', wanted: this.wantAfter(prev) };
    const line = bookLine(facts, NEW_LINE, false);
    this.lines.splice(at, 0, line);
    this.byId.set(line.id, line);
    this.inserted += 1;

    const regionEnd = this.rechain(at, prev?.after ?? null, line);
    if (typeof regionEnd !== 'number') return { kind: 'wants', wanted: regionEnd };
    const index = this.lines.indexOf(line);
    line.late = index < this.lines.length - 1;
    this.reconcileBreaks(Math.max(0, at - 1), regionEnd, line);
    return { kind: 'inserted', line, late: line.late, next: this.lines[index + 1] ?? null };
  }

  /**
   * Re-orders the group at `start` and carries balances forward group by group until a group receives the same
   * incoming balance as before: from there on nothing changes. Returns where the changed region ends.
   */
  private rechain(start: number, incoming: bigint | null, added: BookLine): number | LinesWanted {
    let index = start;
    let carried = incoming;
    let previousOldOut: bigint | null = incoming; // what the previous group handed on before this change
    let first = true;
    while (index < this.lines.length) {
      if (!first && carried === previousOldOut) break;
      const end = this.groupEnd(index);
      if (typeof end !== 'number') return end;
      const group = this.lines.slice(index, end);
      const old = group.filter((l) => l !== added);
      const oldOut = old.length > 0 ? old[old.length - 1]!.after : previousOldOut;
      const ordered = orderSameInstant(carried, group);
      ordered.forEach((line, i) => {
        this.lines[index + i] = line;
        const { before, after } = balancesOf(line, carried);
        if (line.seq !== i || line.before !== before || line.after !== after) {
          line.seq = i;
          line.before = before;
          line.after = after;
          line.dirty = true;
        }
        carried = after;
      });
      previousOldOut = oldOut;
      first = false;
      index = end;
    }
    return Math.min(index, this.lines.length - 1);
  }

  /**
   * Where the same-instant group at `index` ends, once every line of it is known to be in memory and the line
   * after it (if any) is its real successor; otherwise the lines wanted to know that.
   */
  private groupEnd(index: number): number | LinesWanted {
    const instant = this.lines[index]!.instant;
    for (let end = index; ; ) {
      const line = this.lines[end]!;
      if (line.frontierAfter) return this.wantAfter(line);
      end += 1;
      if (end === this.lines.length || this.lines[end]!.instant !== instant) return end;
    }
  }

  private wantAfter(line: BookLine): LinesWanted {
    return { accountId: this.accountId, afterTransactionId: line.id, limit: Math.max(LINES_PER_REQUEST, this.lines.length) };
  }

  /**
   * Opens a break for every adjacent pair in the changed region that does not link, and resolves every open break
   * whose pair is no longer adjacent with the same missing amount. An open break was an adjacent pair before this
   * change; the region [start, end] holds the same lines as before (plus the new one), re-ordered within their groups,
   * so a break's pair may have changed exactly when both of its lines lie in the region: wherever the re-ordering put
   * them (its left may now end the region, its right begin it).
   */
  private reconcileBreaks(start: number, end: number, cause: BookLine): void {
    if (this.open.size === 0 && this.linksThrough(start, end)) return;
    const pairs = new Map<string, bigint>();
    const region = new Set<string>();
    for (let i = start; i <= end; i++) region.add(this.lines[i]!.id);
    const affected = new Set<BreakState>();
    for (const id of region) {
      const b = this.openByLeft.get(id);
      if (b && region.has(b.beforeTransactionId)) affected.add(b);
    }
    for (let i = start; i < end; i++) {
      const t = this.lines[i]!;
      const u = this.lines[i + 1]!;
      const missing = missingBetween(t.after, u.before);
      if (missing !== null) pairs.set(`${t.id}>${u.id}`, missing);
    }
    for (const open of affected) {
      const key = pairKey(open);
      if (pairs.get(key) === open.missingAmount) {
        pairs.delete(key);
        continue;
      }
      Object.assign(open, {
        status: 'resolved',
        resolvedAt: cause.receivedAt,
        resolvedByEventId: cause.eventId,
        resolvedBySource: cause.source,
        resolution: this.resolutionOf(open),
        dirty: true,
      });
      this.untrack(open);
      this.closedBreaks.push(open);
    }
    for (const [key, missingAmount] of pairs) {
      const [afterTransactionId, beforeTransactionId] = key.split('>') as [string, string];
      this.track({
        afterTransactionId,
        beforeTransactionId,
        missingAmount,
        openedAt: cause.receivedAt,
        openedByEventId: cause.eventId,
        status: 'open',
        resolvedAt: null,
        resolvedByEventId: null,
        resolvedBySource: null,
        resolution: null,
        dirty: true,
      });
    }
  }

  /** The common case, checked without allocating: every pair in the region links. */
  private linksThrough(start: number, end: number): boolean {
    for (let i = start; i < end; i++) {
      if (missingBetween(this.lines[i]!.after, this.lines[i + 1]!.before) !== null) return false;
    }
    return true;
  }

  private resolutionOf(b: BreakState): 'filled' | 'narrowed' | 'reordered' {
    const from = this.lines.findIndex((l) => l.id === b.afterTransactionId);
    const to = this.lines.findIndex((l) => l.id === b.beforeTransactionId);
    if (from < 0 || to < 0 || to <= from) return 'reordered';
    for (let i = from; i < to; i++) {
      if (missingBetween(this.lines[i]!.after, this.lines[i + 1]!.before) !== null) return 'narrowed';
    }
    return 'filled';
  }

  private track(b: BreakState): void {
    this.open.set(pairKey(b), b);
    this.openByLeft.set(b.afterTransactionId, b);
    this.openByRight.set(b.beforeTransactionId, b);
  }

  private untrack(b: BreakState): void {
    this.open.delete(pairKey(b));
    if (this.openByLeft.get(b.afterTransactionId) === b) this.openByLeft.delete(b.afterTransactionId);
    if (this.openByRight.get(b.beforeTransactionId) === b) this.openByRight.delete(b.beforeTransactionId);
  }

  private lowerBound(instant: number): number {
    let lo = 0;
    let hi = this.lines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.lines[mid]!.instant < instant) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

const NEW_LINE = { seq: 0, before: null, after: null, late: false } as const;

/** A book line's stored fields, without the book's own flags (what the tables hold of it once written). */
export function asStoredLine(l: BookLine): StoredLine {
  return {
    id: l.id,
    eventId: l.eventId,
    instant: l.instant,
    amount: l.amount,
    runningBalance: l.runningBalance,
    transactionDate: l.transactionDate,
    receivedAt: l.receivedAt,
    source: l.source,
    details: l.details,
    seq: l.seq,
    before: l.before,
    after: l.after,
    late: l.late,
  };
}

/**
 * A line of the book, built field by field: every book line has one shape, which keeps the fold's hot path
 * monomorphic (spreading the facts into a literal cost a third of the fold's time).
 */
function bookLine(facts: LineFacts, state: Pick<StoredLine, 'seq' | 'before' | 'after' | 'late'>, stored: boolean): BookLine {
  return {
    id: facts.id,
    eventId: facts.eventId,
    instant: facts.instant,
    amount: facts.amount,
    runningBalance: facts.runningBalance,
    transactionDate: facts.transactionDate,
    receivedAt: facts.receivedAt,
    source: facts.source,
    details: facts.details,
    seq: state.seq,
    before: state.before,
    after: state.after,
    late: state.late,
    frontierAfter: stored,
    dirty: !stored,
    stored,
  };
}

const pairKey = (b: Pick<BreakState, 'afterTransactionId' | 'beforeTransactionId'>) =>
  `${b.afterTransactionId}>${b.beforeTransactionId}`;
