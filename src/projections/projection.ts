import type { RawBuilder } from 'kysely';
import type { RecordedEvent } from '../domain/recorded-event';
import type { ReadModel } from './read-model';

/** See Projection.warm. */
export interface WarmApply {
  apply(readModel: ReadModel, events: readonly RecordedEvent[]): Promise<void>;
  /** Drops everything remembered: the next batch reads its context from the tables again. */
  forget(): void;
}

/** A read table and the columns that identify a row, for comparing a rebuilt schema with the live one. */
export interface ReadTable {
  readonly name: string;
  readonly key: readonly string[];
  /**
   * Columns whose values differ between two replays of the same log by nature (a writing transaction's id, when an
   * event failed): a comparison leaves them out and looks at every other column, those added later included.
   */
  readonly volatile?: readonly string[];
}

/** What an event concerns, as far as its data tells (null where it cannot be told, e.g. an undecodable event). */
export interface EventSubject {
  /** The account id (ledger) or grant id (grants) whose rows the event changes. */
  readonly subject: string | null;
  /** The bank-local date YYYY-MM-DD of the transaction it books, when it books one. */
  readonly transactionDate: string | null;
}

/** Where the events lie that built a subject's rows: ids with their log positions, and streams to read whole. */
export interface SubjectHistory {
  readonly events: readonly { readonly eventId: string; readonly position: string }[];
  readonly streams: readonly string[];
}

/**
 * A projection owns a PostgreSQL schema. `apply` runs inside the runner's transaction together with the
 * checkpoint, so each batch takes effect exactly once; applying an event twice must change nothing.
 */
export interface Projection {
  readonly name: string;
  /** Bumped whenever the tables or the meaning of a column change: the schema is then rebuilt from the log. */
  readonly version: number;
  readonly eventTypes: readonly string[];
  /**
   * The metadata keys `apply` reads: the log may hand the runner, rebuild and verify only these (see
   * ReadAllOptions.metadataKeys). Absent: the whole metadata. A retry reads its events whole.
   */
  readonly metadataKeys?: readonly string[];
  readonly tables: readonly ReadTable[];
  /** The tables, with the indexes the projection itself reads by (its loads, its conflict targets). */
  createSchema(readModel: ReadModel): Promise<void>;
  /**
   * The indexes only the read model's readers need (statements, audit, paging), one statement each, independent of
   * each other: a rebuild builds them once after replaying the log, which costs far less than keeping them up to date
   * row by row, and builds them side by side; verify never builds them.
   */
  queryIndexes?(schema: string): readonly RawBuilder<unknown>[];
  apply(readModel: ReadModel, events: readonly RecordedEvent[]): Promise<void>;
  /**
   * An `apply` that remembers what it read and wrote between one writer's batches (the ledger's account books), so
   * a batch reads only what it has not seen. The caller owns it and must `forget` whenever the schema may have
   * changed behind it or a transaction it applied in did not commit (projection-store.ts, commitBatch).
   */
  warm?(): WarmApply;
  /** What a parked event concerns: shown to operators, counted on the account, and the unit a retry re-derives. */
  subjectOf(event: RecordedEvent): EventSubject;
  /**
   * Deletes every row derived for these subjects (and for the events being retried), and says which events built
   * them: a retry applies those and the retried events again in log order, so that an event parked and applied
   * later leaves the rows a replay of the log would.
   */
  forget(readModel: ReadModel, subjects: readonly string[], retried: readonly RecordedEvent[]): Promise<SubjectHistory>;
  /**
   * What these subjects' readers see changed outside `apply`: events of theirs were parked or retried (a statement
   * counts its account's parked events). In the same transaction as that change.
   */
  touch?(readModel: ReadModel, subjects: readonly string[]): Promise<void>;
}
