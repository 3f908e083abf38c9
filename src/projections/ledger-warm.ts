import { type BookLine, type StoredLine, asStoredLine } from './account-book';
import type { AccountState, LedgerChanges, LedgerContext } from './ledger-fold';

/** What the load step would read of an account a batch only appends to: its row and its last line. */
export interface KnownAccount {
  readonly state: AccountState;
  readonly tail: StoredLine | null;
}

/** Accounts remembered at most; beyond, the least recently written are read from the tables again. */
const CAPACITY = 20_000;

/**
 * The account rows and last lines one writer's batches left in the read model, kept between its batches so that a
 * batch reads only accounts it has not written (ledger.projection.ts, `warm`). Only as true as the transactions that
 * wrote them: the owner forgets everything when one does not commit or when anyone else may have written the schema.
 * Open breaks, islands and conflicts are still read every batch: only the append path is remembered.
 */
export class WarmBooks {
  private readonly accounts = new Map<string, KnownAccount>();

  get known(): ReadonlyMap<string, KnownAccount> {
    return this.accounts;
  }

  /** After a batch's write: each changed account's new row and its last line, which the batch changed or read. */
  learn(changes: LedgerChanges, context: LedgerContext): void {
    for (const { account, added, moved } of changes.accounts) {
      const id = account.accountId;
      const tail = account.lastTransactionId === null ? null : this.lineOf(id, account.lastTransactionId, added, moved, context);
      this.accounts.delete(id);
      if (tail === undefined) continue; // not at hand: read again next time
      this.accounts.set(id, { state: account, tail });
    }
    for (const id of this.accounts.keys()) {
      if (this.accounts.size <= CAPACITY) break;
      this.accounts.delete(id);
    }
  }

  forget(): void {
    this.accounts.clear();
  }

  /** The line as the tables now hold it: written by the batch (added, moved), else unchanged since it was read. */
  private lineOf(id: string, txId: string, added: readonly BookLine[], moved: readonly BookLine[], context: LedgerContext): StoredLine | undefined {
    const written = added.findLast((l) => l.id === txId) ?? moved.findLast((l) => l.id === txId);
    if (written) return asStoredLine(written);
    const known = this.accounts.get(id)?.tail;
    if (known?.id === txId) return known;
    for (const run of context.accounts.get(id)?.runs ?? []) {
      const line = run.lines.find((l) => l.id === txId);
      if (line) return line;
    }
    return undefined;
  }
}
