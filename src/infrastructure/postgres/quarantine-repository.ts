import type { Selectable } from 'kysely';
import type { Quarantine, QuarantinedBody } from '../../application/ports/quarantine';
import type { QuarantineTable, WriteSideDb } from './tables';
import { storableText, storableTextOrNull } from './text';

type QuarantineRow = Selectable<QuarantineTable>;

const SUMMARY = [
  'id', 'body_sha256', 'content_type', 'reason', 'source', 'request_id', 'remote_address', 'first_received_at', 'last_received_at',
  'times_received', 'reingested_at', 'reingest_outcome',
] as const;

export function createQuarantineRepository(db: WriteSideDb): Quarantine {
  return {
    async put(entry) {
      // Any bytes at all are kept exactly (bytea); what describes them may quote them (a parser's message), so it is
      // made storable: one body that cannot be described must still be quarantined, never answered 500.
      const problems = entry.problems.map((p) => ({ field: storableText(p.field), message: storableText(p.message) }));
      const row = await db
        .insertInto('quarantine')
        .values({
          body_sha256: entry.bodySha256,
          raw_body: Buffer.from(entry.rawBody),
          content_type: storableTextOrNull(entry.contentType),
          reason: JSON.stringify({ problems }),
          source: storableText(entry.source),
          request_id: storableTextOrNull(entry.requestId),
          remote_address: storableTextOrNull(entry.remoteAddress),
          first_received_at: entry.receivedAt,
          last_received_at: entry.receivedAt,
        })
        .onConflict((oc) =>
          oc.column('body_sha256').doUpdateSet((eb) => ({
            times_received: eb('quarantine.times_received', '+', 1),
            last_received_at: eb.ref('excluded.last_received_at'),
          })),
        )
        .returning('id')
        .executeTakeFirstOrThrow();
      return row.id;
    },
    async list({ pendingOnly, limit, after = null }) {
      const rows = await db
        .selectFrom('quarantine')
        .select(SUMMARY)
        .select((eb) => eb.fn<number>('octet_length', ['raw_body']).as('byte_length'))
        .$if(pendingOnly, (q) => q.where('reingested_at', 'is', null))
        .where('id', '>', after === null ? '0' : after)
        .orderBy('id')
        .limit(limit)
        .execute();
      return rows.map(({ byte_length, ...row }) => {
        const { rawBody: _body, ...summary } = toBody({ ...row, raw_body: new Uint8Array() });
        return { ...summary, byteLength: byte_length };
      });
    },
    async get(id) {
      if (!/^\d{1,18}$/.test(id)) return null;
      const row = await db.selectFrom('quarantine').selectAll().where('id', '=', id).executeTakeFirst();
      return row ? toBody(row) : null;
    },
    async markReingested(id, outcome, at) {
      await db.updateTable('quarantine').set({ reingested_at: at, reingest_outcome: JSON.stringify(outcome) }).where('id', '=', id).execute();
    },
  };
}

function toBody(row: QuarantineRow): QuarantinedBody {
  return {
    id: String(row.id),
    bodySha256: row.body_sha256,
    rawBody: new Uint8Array(row.raw_body),
    contentType: row.content_type,
    problems: row.reason.problems,
    source: row.source,
    requestId: row.request_id,
    remoteAddress: row.remote_address,
    firstReceivedAt: new Date(row.first_received_at),
    lastReceivedAt: new Date(row.last_received_at),
    timesReceived: row.times_received,
    reingestedAt: row.reingested_at ? new Date(row.reingested_at) : null,
    reingestOutcome: row.reingest_outcome,
  };
}
