import type { Kysely } from 'kysely';
import type { JsonObject } from '../domain/bank-transaction';

/** An event as a projection sees it (structurally the event store's RecordedEvent). */
export interface ProjectionEvent {
  readonly position: string;
  readonly streamId: string;
  readonly eventId: string;
  readonly type: string;
  readonly data: JsonObject;
  readonly metadata: JsonObject;
  readonly recordedAt: Date;
}

/** A read table and the columns that identify a row, for comparing a rebuilt schema with the live one. */
export interface ReadTable {
  readonly name: string;
  readonly key: readonly string[];
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
  readonly tables: readonly ReadTable[];
  createSchema(db: Kysely<any>, schema: string): Promise<void>;
  apply(trx: Kysely<any>, schema: string, events: readonly ProjectionEvent[]): Promise<void>;
}
