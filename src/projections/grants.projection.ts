import { type Selectable, sql } from 'kysely';
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
import type { RecordedEvent } from '../domain/recorded-event';
import type { Projection, ReadTable } from './projection';
import type { ReadModel } from './read-model';
import type { GrantsTable } from './tables';

/** The schema GET /grants reads: one row per grant, its accounts and the state the GRANT webhooks left it in. */
export const GRANTS_SCHEMA = 'grants';

const TABLES: readonly ReadTable[] = [{ name: 'grants', key: ['grant_id'] }];

/** A row of `grants` (tables.ts). */
export type GrantRow = Selectable<GrantsTable>;

export function createGrantsProjection(): Projection {
  return {
    name: 'grants',
    version: 1,
    eventTypes: ['GrantLinked', 'GrantWebhookReceived'],
    metadataKeys: ['receivedAt'],
    tables: TABLES,
    createSchema: createGrantsSchema,
    apply: applyBatch,
    subjectOf: (event) => ({ subject: typeof event.data.grantId === 'string' ? event.data.grantId : null, transactionDate: null }),
    // A grant's row is a fold of its stream (grant-<grantId>) in log order: forget the row, read the stream again.
    async forget(rm, subjects) {
      await rm.db.deleteFrom('grants').where('grant_id', '=', (eb) => eb.fn.any(eb.val([...subjects]))).execute();
      return { events: [], streams: subjects.map((id) => grantStreamId(id)) };
    },
  };
}

async function createGrantsSchema({ db, schema }: ReadModel): Promise<void> {
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

async function applyBatch(rm: ReadModel, events: readonly RecordedEvent[]): Promise<void> {
  const ids = [...new Set(events.map((e) => e.data.grantId).filter((id): id is string => typeof id === 'string'))];
  if (ids.length === 0) return;
  const rows = await rm.db.selectFrom('grants').selectAll().where('grant_id', '=', (eb) => eb.fn.any(eb.val(ids))).forUpdate().execute();
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
    await rm.db
      .insertInto('grants')
      .values({ ...r, accounts: JSON.stringify(r.accounts), last_error: r.last_error === null ? null : JSON.stringify(r.last_error) })
      .onConflict((oc) =>
        oc
          .column('grant_id')
          .doUpdateSet((eb) => ({
            status: eb.ref('excluded.status'),
            fi_id: eb.ref('excluded.fi_id'),
            accounts: eb.ref('excluded.accounts'),
            linked_at: eb.ref('excluded.linked_at'),
            last_error: eb.ref('excluded.last_error'),
            last_webhook_code: eb.ref('excluded.last_webhook_code'),
            updated_at: eb.ref('excluded.updated_at'),
            last_position: eb.ref('excluded.last_position'),
          }))
          .where('grants.last_position', '<', (eb) => eb.ref('excluded.last_position')),
      )
      .execute();
  }
}

/** When the event reached us (its metadata), else when the log stored it. */
function receivedAtOf(event: RecordedEvent): string {
  const stated = event.metadata.receivedAt;
  return typeof stated === 'string' ? new Date(stated).toISOString() : event.recordedAt.toISOString();
}
