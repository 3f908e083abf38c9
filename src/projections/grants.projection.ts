import { type Kysely, sql } from 'kysely';
import { decodeEvent } from '../domain/event-codec';
import { grantStreamId, type LinkedAccount } from '../domain/events';
import {
  type GrantError,
  type GrantState,
  type GrantStatus,
  grantStateAfterLink,
  grantStateAfterWebhook,
  UNKNOWN_GRANT_STATE,
} from '../domain/grant';
import type { Projection, ProjectionEvent, ReadTable } from './projection';

/** The schema GET /grants reads: one row per grant, its accounts and the state the GRANT webhooks left it in. */
export const GRANTS_SCHEMA = 'grants';

const TABLES: readonly ReadTable[] = [{ name: 'grants', key: ['grant_id'] }];

export interface GrantRow {
  grant_id: string;
  status: GrantStatus;
  fi_id: string | null;
  accounts: LinkedAccount[];
  linked_at: Date | null;
  last_error: GrantError | null;
  last_webhook_code: string | null;
  updated_at: Date;
  /** The log position of the last event folded in: an event at or before it is a replay and changes nothing. */
  last_position: string;
}

export function createGrantsProjection(): Projection {
  return {
    name: 'grants',
    version: 1,
    eventTypes: ['GrantLinked', 'GrantWebhookReceived'],
    tables: TABLES,
    createSchema: createGrantsSchema,
    apply: applyBatch,
    subjectOf: (event) => ({ subject: typeof event.data.grantId === 'string' ? event.data.grantId : null, transactionDate: null }),
    // A grant's row is a fold of its stream (grant-<grantId>) in log order: forget the row, read the stream again.
    async forget(trx, schema, subjects) {
      await sql`delete from ${sql.id(schema)}.grants where grant_id = any(${[...subjects]}::text[])`.execute(trx);
      return { events: [], streams: subjects.map((id) => grantStreamId(id)) };
    },
  };
}

async function createGrantsSchema(db: Kysely<any>, schema: string): Promise<void> {
  const s = sql.id(schema);
  await sql`create schema if not exists ${s}`.execute(db);
  await sql`
    create table ${s}.grants (
      grant_id text primary key,
      status text not null check (status in ('active', 'login_required', 'paused', 'revoked', 'error')),
      fi_id text,
      accounts jsonb not null,
      linked_at timestamptz,
      last_error jsonb,
      last_webhook_code text,
      updated_at timestamptz not null,
      last_position text not null
    )`.execute(db);
}

async function applyBatch(trx: Kysely<any>, schema: string, events: readonly ProjectionEvent[]): Promise<void> {
  const s = sql.id(schema);
  const ids = [...new Set(events.map((e) => e.data.grantId).filter((id): id is string => typeof id === 'string'))];
  if (ids.length === 0) return;
  const { rows } = await sql<GrantRow>`select * from ${s}.grants where grant_id = any(${ids}::text[]) for update`.execute(trx);
  const grants = new Map(rows.map((r) => [r.grant_id, r]));
  const changed = new Set<string>();

  for (const event of events) {
    const decoded = decodeEvent(event.type, event.data);
    if (decoded?.type !== 'GrantLinked' && decoded?.type !== 'GrantWebhookReceived') continue;
    const grantId = decoded.data.grantId;
    if (grantId === null) continue;
    const row = grants.get(grantId);
    if (row && row.last_position >= event.position) continue;
    const current: GrantState | null = row ? { status: row.status, lastError: row.last_error } : null;
    const at = new Date(receivedAtOf(event));
    let next: GrantRow;
    if (decoded.type === 'GrantLinked') {
      const state = grantStateAfterLink(current);
      next = {
        grant_id: grantId,
        status: state.status,
        fi_id: decoded.data.fiId ?? row?.fi_id ?? null,
        accounts: decoded.data.accounts.map((a) => ({ ...a })),
        linked_at: new Date(decoded.data.linkedAt),
        last_error: state.lastError,
        last_webhook_code: row?.last_webhook_code ?? null,
        updated_at: at,
        last_position: event.position,
      };
    } else {
      const state = grantStateAfterWebhook(current ?? UNKNOWN_GRANT_STATE, decoded.data.webhookCode, decoded.data.error);
      next = {
        grant_id: grantId,
        status: state.status,
        fi_id: row?.fi_id ?? null,
        accounts: row?.accounts ?? [],
        linked_at: row?.linked_at ?? null,
        last_error: state.lastError,
        last_webhook_code: decoded.data.webhookCode,
        updated_at: at,
        last_position: event.position,
      };
    }
    grants.set(grantId, next);
    changed.add(grantId);
  }

  for (const id of changed) {
    const r = grants.get(id)!;
    await sql`
      insert into ${s}.grants (grant_id, status, fi_id, accounts, linked_at, last_error, last_webhook_code, updated_at, last_position)
      values (${r.grant_id}, ${r.status}, ${r.fi_id}, ${JSON.stringify(r.accounts)}::jsonb, ${r.linked_at},
              ${r.last_error === null ? null : JSON.stringify(r.last_error)}::jsonb, ${r.last_webhook_code}, ${r.updated_at},
              ${r.last_position})
      on conflict (grant_id) do update set
        status = excluded.status, fi_id = excluded.fi_id, accounts = excluded.accounts, linked_at = excluded.linked_at,
        last_error = excluded.last_error, last_webhook_code = excluded.last_webhook_code, updated_at = excluded.updated_at,
        last_position = excluded.last_position
      where ${s}.grants.last_position < excluded.last_position`.execute(trx);
  }
}

/** When the event reached us (its metadata), else when the log stored it. */
function receivedAtOf(event: ProjectionEvent): string {
  const stated = event.metadata.receivedAt;
  return typeof stated === 'string' ? new Date(stated).toISOString() : event.recordedAt.toISOString();
}
