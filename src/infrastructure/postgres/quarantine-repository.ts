import { type Kysely, sql } from 'kysely';
import type { FieldProblem } from '../../application/cas-webhook';
import type { Quarantine, QuarantinedBody } from '../../application/ports/quarantine';
import { storableText, storableTextOrNull } from './text';

interface QuarantineRow {
  id: string;
  body_sha256: string;
  raw_body: Uint8Array;
  content_type: string | null;
  reason: { problems: FieldProblem[] };
  source: string;
  request_id: string | null;
  remote_address: string | null;
  first_received_at: Date;
  last_received_at: Date;
  times_received: number;
  reingested_at: Date | null;
  reingest_outcome: unknown;
}

export function createQuarantineRepository(db: Kysely<any>): Quarantine {
  return {
    async put(entry) {
      // Any bytes at all are kept exactly (bytea); what describes them may quote them (a parser's message), so it is
      // made storable: one body that cannot be described must still be quarantined, never answered 500.
      const problems = entry.problems.map((p) => ({ field: storableText(p.field), message: storableText(p.message) }));
      const { rows } = await sql<{ id: string }>`
        insert into quarantine (body_sha256, raw_body, content_type, reason, source, request_id, remote_address,
                                first_received_at, last_received_at)
        values (${entry.bodySha256}, ${Buffer.from(entry.rawBody)}, ${storableTextOrNull(entry.contentType)},
                ${JSON.stringify({ problems })}::jsonb, ${storableText(entry.source)}, ${storableTextOrNull(entry.requestId)},
                ${storableTextOrNull(entry.remoteAddress)}, ${entry.receivedAt}, ${entry.receivedAt})
        on conflict (body_sha256) do update
          set times_received = quarantine.times_received + 1, last_received_at = excluded.last_received_at
        returning id`.execute(db);
      return rows[0]!.id;
    },
    async list({ pendingOnly, limit, after = null }) {
      const { rows } = await sql<Omit<QuarantineRow, 'raw_body'> & { byte_length: number }>`
        select id, body_sha256, octet_length(raw_body) as byte_length, content_type, reason, source, request_id, remote_address,
          first_received_at, last_received_at, times_received, reingested_at, reingest_outcome
        from quarantine
        where ${pendingOnly ? sql`reingested_at is null` : sql`true`} and id > ${after === null ? '0' : after}::bigint
        order by id limit ${limit}`.execute(db);
      return rows.map(({ byte_length, ...row }) => {
        const { rawBody: _body, ...summary } = toBody({ ...row, raw_body: new Uint8Array() });
        return { ...summary, byteLength: byte_length };
      });
    },
    async get(id) {
      if (!/^\d{1,18}$/.test(id)) return null;
      const { rows } = await sql<QuarantineRow>`select * from quarantine where id = ${id}`.execute(db);
      return rows[0] ? toBody(rows[0]) : null;
    },
    async markReingested(id, outcome, at) {
      await sql`update quarantine set reingested_at = ${at}, reingest_outcome = ${JSON.stringify(outcome)}::jsonb
                where id = ${id}`.execute(db);
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
