import { balancesOf, type ChainTransaction, missingBetween, orderSameInstant } from '../domain/chain';

/**
 * One account's statement lines as far as a projection batch needs them: an in-memory, ordered window over the
 * `statement_lines` table that is loaded around each new transaction, changed in memory, and written back once
 * per batch. The work for one transaction is bounded by its same-instant group and the lines whose derived
 * balances it changes, never by the account's history.
 */
export interface LineFacts extends ChainTransaction {
  readonly eventId: string;
  readonly transactionDate: string;
  readonly receivedAt: string;
  readonly source: string;
  /** Statement columns the chain does not look at, carried through as they are stored. */
  readonly details: Readonly<Record<string, string | null>>;
}

export interface BookLine extends LineFacts {
  seq: number;
  before: bigint | null;
  after: bigint | null;
  late: boolean;
  /** True when the store may hold lines between this line and the next one in memory (not loaded yet). */
  frontierAfter: boolean;
  dirty: boolean;
  /** False for a line this batch added: it is inserted, the others are updated. */
  readonly stored: boolean;
}

export interface StoredLine extends LineFacts {
  readonly seq: number;
  readonly before: bigint | null;
  readonly after: bigint | null;
  readonly late: boolean;
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
  dirty: boolean;
}

export interface BookLoader {
  /** Up to `limit` lines after the given position, in statement order. */
  linesAfter(accountId: string, position: { instant: number; seq: number }, limit: number): Promise<StoredLine[]>;
}

export interface InsertOutcome {
  readonly line: BookLine;
  readonly late: boolean;
  readonly opened: readonly BreakState[];
  readonly resolved: readonly BreakState[];
}

const LAZY_PAGE = 64;

export class AccountBook {
  readonly lines: BookLine[] = [];
  private readonly ids = new Set<string>();
  /** Open breaks by pair, and by their two lines: a line is the left (right) of at most one open break. */
  private readonly open = new Map<string, BreakState>();
  private readonly openByLeft = new Map<string, BreakState>();
  private readonly openByRight = new Map<string, BreakState>();
  readonly closedBreaks: BreakState[] = [];
  inserted = 0;

  constructor(
    readonly accountId: string,
    private readonly loader: BookLoader,
  ) {}

  has(transactionId: string): boolean {
    return this.ids.has(transactionId);
  }

  /**
   * Adds a contiguous run of stored lines: `prev` (the last line before some instant) and the lines from that
   * instant on. `complete` says the run reaches the account's last line.
   */
  addStored(prev: StoredLine | null, from: readonly StoredLine[], complete: boolean): void {
    const run = prev ? [prev, ...from] : [...from];
    if (run.length === 0) return;
    const placed = run.map((stored) => this.place(stored));
    placed.forEach((line, i) => {
      if (i < placed.length - 1) line.frontierAfter = false;
      else if (complete) line.frontierAfter = false;
    });
  }

  addOpenBreaks(breaks: readonly BreakState[]): void {
    for (const b of breaks) if (!this.open.has(pairKey(b))) this.track(b);
  }

  get openBreaks(): BreakState[] {
    return [...this.open.values()];
  }

  get openBreakCount(): number {
    return this.open.size;
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

  /** The account's last line, when the window reaches it. */
  tail(): BookLine | null {
    const last = this.lines[this.lines.length - 1];
    return last && !last.frontierAfter ? last : null;
  }

  async insert(facts: LineFacts): Promise<InsertOutcome | null> {
    const firstAtOrAfter = this.lowerBound(facts.instant);
    if (this.lines[firstAtOrAfter]?.instant === facts.instant) await this.completeGroup(firstAtOrAfter, facts.instant);
    if (this.ids.has(facts.id)) return null; // replaying an event already projected changes nothing
    const prev = this.lines[firstAtOrAfter - 1] ?? null;
    const line: BookLine = { ...facts, seq: 0, before: null, after: null, late: false, frontierAfter: false, dirty: true, stored: false };
    this.lines.splice(firstAtOrAfter, 0, line);
    this.ids.add(line.id);
    this.inserted += 1;

    const { regionEnd } = await this.rechain(firstAtOrAfter, prev?.after ?? null, line);
    const index = this.lines.indexOf(line);
    line.late = index < this.lines.length - 1;
    const regionStart = Math.max(0, firstAtOrAfter - 1);
    const { opened, resolved } = this.reconcileBreaks(regionStart, regionEnd, line);
    return { line, late: line.late, opened, resolved };
  }

  /**
   * Re-orders the group at `start` and carries balances forward group by group until a group receives the same
   * incoming balance as before: from there on nothing changes.
   */
  private async rechain(start: number, incoming: bigint | null, added: BookLine): Promise<{ regionEnd: number }> {
    let index = start;
    let carried = incoming;
    let previousOldOut: bigint | null = incoming; // what the previous group handed on before this change
    let first = true;
    while (index < this.lines.length) {
      const instant = this.lines[index]!.instant;
      await this.completeGroup(index, instant);
      let end = index;
      while (end < this.lines.length && this.lines[end]!.instant === instant) end++;
      const group = this.lines.slice(index, end);
      const old = group.filter((l) => l !== added);
      const oldOut = old.length > 0 ? old[old.length - 1]!.after : previousOldOut;
      if (!first && carried === previousOldOut) break;
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
      if (index === this.lines.length) await this.loadBeyond(this.lines[index - 1]!);
    }
    return { regionEnd: Math.min(index, this.lines.length - 1) };
  }

  /** Makes sure every line of the group at `instant` is in memory before it is re-ordered. */
  private async completeGroup(index: number, instant: number): Promise<void> {
    for (;;) {
      let end = index;
      while (end < this.lines.length && this.lines[end]!.instant === instant) end++;
      const last = this.lines[end - 1]!;
      if (end < this.lines.length || !last.frontierAfter) return;
      if (!(await this.loadBeyond(last))) return;
    }
  }

  private async loadBeyond(line: BookLine): Promise<boolean> {
    if (!line.frontierAfter) return false;
    const more = await this.loader.linesAfter(this.accountId, line, LAZY_PAGE);
    line.frontierAfter = false;
    const placed = more.map((stored) => this.place(stored));
    placed.forEach((l, i) => {
      l.frontierAfter = i === placed.length - 1 ? more.length === LAZY_PAGE : false;
    });
    return more.length > 0;
  }

  /**
   * Opens a break for every adjacent pair in the changed region that does not link, and resolves every open break
   * whose pair is no longer adjacent with the same missing amount.
   */
  private reconcileBreaks(start: number, end: number, cause: BookLine) {
    if (this.open.size === 0 && this.linksThrough(start, end)) return { opened: [], resolved: [] };
    const pairs = new Map<string, bigint>();
    const lefts = new Set<string>();
    const rights = new Set<string>();
    for (let i = start; i < end; i++) {
      const t = this.lines[i]!;
      const u = this.lines[i + 1]!;
      lefts.add(t.id);
      rights.add(u.id);
      const missing = missingBetween(t.after, u.before);
      if (missing !== null) pairs.set(`${t.id}>${u.id}`, missing);
    }
    const resolved: BreakState[] = [];
    const affected = new Set<BreakState>();
    for (const id of lefts) {
      const b = this.openByLeft.get(id);
      if (b) affected.add(b);
    }
    for (const id of rights) {
      const b = this.openByRight.get(id);
      if (b) affected.add(b);
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
      resolved.push(open);
    }
    const opened: BreakState[] = [];
    for (const [key, missingAmount] of pairs) {
      const [afterTransactionId, beforeTransactionId] = key.split('>') as [string, string];
      const state: BreakState = {
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
      };
      this.track(state);
      opened.push(state);
    }
    return { opened, resolved };
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

  /** Puts a stored line in its place (or returns the one already in memory, which may be newer). */
  private place(stored: StoredLine): BookLine {
    if (this.ids.has(stored.id)) return this.lines.find((l) => l.id === stored.id)!;
    const line: BookLine = { ...stored, frontierAfter: true, dirty: false, stored: true };
    let lo = 0;
    let hi = this.lines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = this.lines[mid]!;
      if (m.instant < line.instant || (m.instant === line.instant && m.seq < line.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.lines.splice(lo, 0, line);
    this.ids.add(line.id);
    return line;
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

const pairKey = (b: Pick<BreakState, 'afterTransactionId' | 'beforeTransactionId'>) =>
  `${b.afterTransactionId}>${b.beforeTransactionId}`;
