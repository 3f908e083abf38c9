import { type BookLine, type BreakState, type LinesWanted, type StoredLine, type StoredRun, asStoredLine } from '../../src/projections/account-book';
import {
  type AccountState,
  type Anomaly,
  bookedAccounts,
  continuationRun,
  islandRun,
  type LedgerBatch,
  type LedgerChanges,
  type LedgerContext,
  planLoads,
  type StoredBreak,
} from '../../src/projections/ledger-fold';

export interface MemoryLine extends StoredLine {
  readonly accountId: string;
}

export interface MemoryBreak extends StoredBreak {
  readonly accountId: string;
}

/**
 * The ledger read model as plain maps, for folding without a database: it answers the load plan the way
 * ledger-load.ts's queries do (tails by key, the line before an instant and `window` lines from it on, open breaks,
 * the lines after a line), and takes the fold's changes the way ledger-write.ts's statements do.
 */
export class MemoryLedger {
  readonly accounts = new Map<string, AccountState>();
  readonly lines = new Map<string, MemoryLine>();
  readonly breaks = new Map<string, MemoryBreak>();
  readonly anomalies = new Map<string, Anomaly>();
  /** Every request for more lines the fold made. */
  readonly requests: LinesWanted[] = [];

  constructor(private readonly window: number) {}

  /** An account's lines in statement order. */
  linesOf(accountId: string): MemoryLine[] {
    return [...this.lines.values()].filter((l) => l.accountId === accountId).sort((a, b) => a.instant - b.instant || a.seq - b.seq);
  }

  load(batch: LedgerBatch): LedgerContext {
    const ids = bookedAccounts(batch);
    const states = new Map(ids.flatMap((id) => (this.accounts.has(id) ? [[id, this.accounts.get(id)!] as const] : [])));
    const plan = planLoads(batch, states);
    const accounts = new Map(ids.map((id) => [id, { state: states.get(id) ?? null, runs: [] as StoredRun[], openBreaks: [] as StoredBreak[] }]));
    for (const { accountId, transactionId } of plan.tails) {
      const tail = this.lines.get(transactionId);
      if (tail) accounts.get(accountId)!.runs.push({ lines: [tail], complete: true });
    }
    for (const { accountId, instant } of plan.islands) {
      const lines = this.linesOf(accountId);
      const prev = lines.filter((l) => l.instant < instant).at(-1) ?? null;
      const from = lines.filter((l) => l.instant >= instant).slice(0, this.window);
      accounts.get(accountId)!.runs.push(islandRun(prev, from, this.window));
    }
    for (const b of this.breaks.values()) {
      if (b.status === 'open' && plan.breaks.includes(b.accountId)) accounts.get(b.accountId)?.openBreaks.push(b);
    }
    const linesOfConflicts = new Map(plan.conflicts.flatMap((id) => (this.lines.has(id) ? [[id, this.lines.get(id)!.accountId] as const] : [])));
    return { accounts, linesOfConflicts };
  }

  async loadWanted(wanted: readonly LinesWanted[]): Promise<{ accountId: string; run: StoredRun }[]> {
    this.requests.push(...wanted);
    return wanted.flatMap((w) => {
      const after = this.lines.get(w.afterTransactionId);
      if (!after) return [];
      const more = this.linesOf(w.accountId)
        .filter((l) => l.instant > after.instant || (l.instant === after.instant && l.seq > after.seq))
        .slice(0, w.limit);
      return [{ accountId: w.accountId, run: continuationRun(after, more, w) }];
    });
  }

  write(changes: LedgerChanges): void {
    for (const { account, added, moved, breaks, late } of changes.accounts) {
      for (const line of added) {
        if (this.lines.has(line.id)) throw new Error(`duplicate key: statement line ${line.id}`);
        this.lines.set(line.id, stored(account.accountId, line));
      }
      for (const line of moved) this.lines.set(line.id, stored(account.accountId, line));
      for (const b of breaks) this.writeBreak(account.accountId, b);
      for (const a of late) if (!this.anomalies.has(`${a.kind}:${a.eventId}`)) this.anomalies.set(`${a.kind}:${a.eventId}`, a);
      const before = this.accounts.get(account.accountId);
      this.accounts.set(account.accountId, { ...account, grantId: before?.grantId ?? account.grantId });
    }
    for (const a of changes.conflicts) if (!this.anomalies.has(`${a.kind}:${a.eventId}`)) this.anomalies.set(`${a.kind}:${a.eventId}`, a);
  }

  private writeBreak(accountId: string, b: BreakState): void {
    const key = `${accountId}:${b.afterTransactionId}:${b.beforeTransactionId}:${b.openedByEventId}`;
    const { dirty: _dirty, ...state } = b;
    this.breaks.set(key, { ...(this.breaks.get(key) ?? {}), ...state, accountId });
  }

  /** Everything, as comparable plain data. */
  snapshot() {
    const byKey = <T>(m: Map<string, T>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return { accounts: byKey(this.accounts), lines: byKey(this.lines), breaks: byKey(this.breaks), anomalies: byKey(this.anomalies) };
  }
}

function stored(accountId: string, l: BookLine): MemoryLine {
  return { accountId, ...asStoredLine(l) };
}
