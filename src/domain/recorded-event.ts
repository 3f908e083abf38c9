import type { JsonObject } from './bank-transaction';

/**
 * An event as the log holds it: the envelope the event-store port returns and the projections fold. Declared here,
 * in the domain, so that both the application (its port) and the projections import the one shape.
 */
export interface RecordedEvent {
  /** Opaque, and sorts (as a string) like the global order. */
  readonly position: string;
  readonly streamId: string;
  readonly revision: bigint;
  readonly eventId: string;
  readonly type: string;
  readonly data: JsonObject;
  readonly metadata: JsonObject;
  readonly recordedAt: Date;
  /** The event's attachment (see the event-store port): present only when the read asked for it and one is stored. */
  readonly attachment?: string;
}
