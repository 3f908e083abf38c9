/**
 * An open break that gap healing may try to close: the account's bank, number and grant, and the transaction dates
 * of the break's two lines (the window in which the missing transactions lie).
 */
export interface BreakToHeal {
  readonly breakId: string;
  readonly accountId: string;
  /** The grant the ledger saw on the account's transactions, if any. */
  readonly grantId: string | null;
  readonly fiId: string;
  readonly accountNumber: string;
  readonly fromDate: string;
  readonly toDate: string;
}
