import type { FieldProblem } from '../cas-webhook';

/** A body the ledger could not book, kept byte for byte so that an operator can inspect and re-ingest it. */
export interface QuarantinedBody {
  readonly id: string;
  readonly bodySha256: string;
  readonly rawBody: Uint8Array;
  readonly contentType: string | null;
  readonly problems: readonly FieldProblem[];
  readonly source: string;
  readonly requestId: string | null;
  readonly remoteAddress: string | null;
  readonly firstReceivedAt: Date;
  readonly lastReceivedAt: Date;
  readonly timesReceived: number;
  readonly reingestedAt: Date | null;
  readonly reingestOutcome: unknown;
}

/** A quarantined body's record without the body itself (listings: a page never holds the bodies). */
export type QuarantineSummary = Omit<QuarantinedBody, 'rawBody'> & { readonly byteLength: number };

export interface QuarantineEntry {
  readonly rawBody: Uint8Array;
  readonly bodySha256: string;
  readonly contentType: string | null;
  readonly problems: readonly FieldProblem[];
  readonly source: string;
  readonly requestId: string | null;
  readonly remoteAddress: string | null;
  readonly receivedAt: Date;
}

export interface Quarantine {
  /** Keeps the body once per SHA-256; a repeat only counts. Returns the entry's id. */
  put(entry: QuarantineEntry): Promise<string>;
  /** Oldest first (by id); `after` an id: the entries after it (paging). */
  list(options: { pendingOnly: boolean; limit: number; after?: string | null }): Promise<QuarantineSummary[]>;
  get(id: string): Promise<QuarantinedBody | null>;
  markReingested(id: string, outcome: unknown, at: Date): Promise<void>;
}
