/**
 * One group commit of the webhook path, timed alone on one connection: the same rows (what ingest appends for
 * distinct webhooks) inserted in the forms tried for `insertGroup`, each form on fresh rows, alternated, in a fresh
 * database of the local server (fsync and synchronous_commit as configured). Prints each form's median and 90th
 * percentile round trip per group (lock, insert, commit) and the Node CPU it took (the driver's work included).
 *
 *   npx tsx bench/group-insert.ts [rows per group = 64] [groups = 200] [rounds = 2] [form,form,…]
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { APPEND_LOCK, groupInsertText, groupParameters, groupSlots } from '../src/infrastructure/eventstore/postgres-appends';
import { migratedClient } from './lib';
import { eventsOfIngest } from './store';

const size = Number(process.argv[2] ?? 64);
const groups = Number(process.argv[3] ?? 200);
const rounds = Number(process.argv[4] ?? 2);
/** Which forms, in which order (names joined by commas; all by default). */
const chosen = process.argv[5]?.split(',') ?? null;
const LOCK = APPEND_LOCK.toString();
/** The events inserted from `source` (rows `g` with a raw_body), then their attachments from what the insert returned. */
const insertFrom = (lock: string, source: string, onConflict = true) => `with append_lock as (select pg_advisory_xact_lock(${lock}::bigint)),
  g as materialized (select * from ${source}),
  inserted as (
    insert into events (stream_id, revision, event_id, type, data, metadata)
    select g.stream_id, 0, g.event_id, g.type, g.data, g.metadata from append_lock, g${onConflict ? ' on conflict do nothing' : ''}
    returning event_id, seq),
  attached as (
    insert into event_attachments (seq, body)
    select i.seq, g.raw_body from inserted i join g on g.event_id = i.event_id where g.raw_body is not null)
  select event_id, seq from inserted`;

interface Row {
  readonly stream_id: string;
  readonly event_id: string;
  readonly type: string;
  readonly data: unknown;
  readonly metadata: unknown;
  readonly raw_body: string | null;
}

const values = (rows: readonly Row[]) => rows.flatMap((r) => [r.stream_id, r.event_id, r.type, JSON.stringify(r.data), JSON.stringify(r.metadata), r.raw_body]);
const multiRow = (n: number) =>
  Array.from({ length: n }, (_, i) => `($${i * 6 + 2}::text, $${i * 6 + 3}::uuid, $${i * 6 + 4}::text, $${i * 6 + 5}::json, $${i * 6 + 6}::json, $${i * 6 + 7}::text)`).join(', ');

const forms: Record<string, (client: pg.Client, rows: readonly Row[]) => Promise<unknown>> = {
  // Before: the rows' JSON joined into one parameter, read by json_to_recordset (which unescapes every string).
  'one JSON parameter': (client, rows) =>
    client.query({
      name: 'json',
      text: insertFrom(
        '$2',
        `json_to_recordset(('[' || $1::text || ']')::json) as g(stream_id text, event_id uuid, type text, data json, metadata json, raw_body text)`,
      ),
      values: [rows.map((r) => JSON.stringify(r)).join(','), LOCK],
    }),
  // One array per column (the driver escapes each element in JavaScript).
  'unnest of arrays': (client, rows) =>
    client.query({
      name: 'unnest',
      text: insertFrom('$7', 'unnest($1::text[], $2::uuid[], $3::text[], $4::json[], $5::json[], $6::text[]) as g(stream_id, event_id, type, data, metadata, raw_body)'),
      values: [...[0, 1, 2, 3, 4, 5].map((c) => rows.map((r) => values([r])[c])), LOCK],
    }),
  // A prepared multi-row VALUES, one parameter per column and row, `on conflict do nothing` (the first such form).
  'multi-row VALUES': (client, rows) =>
    client.query({
      name: `values-${rows.length}`,
      text: insertFrom('$1', `(values ${multiRow(rows.length)}) as g(stream_id, event_id, type, data, metadata, raw_body)`),
      values: [LOCK, ...values(rows)],
    }),
  // The service's form until the seq was taken in g: the same insert without `on conflict`, tried first.
  'plain VALUES': (client, rows) =>
    client.query({
      name: `plain-${rows.length}`,
      text: insertFrom('$1', `(values ${multiRow(rows.length)}) as g(stream_id, event_id, type, data, metadata, raw_body)`, false),
      values: [LOCK, ...values(rows)],
    }),
  // The service's statement (postgres-appends.ts): each row's seq taken in `g` after the lock, both inserts read `g`.
  'seq in g': (client, rows) => {
    const slots = groupSlots(rows.length);
    return client.query({
      name: `seq-${slots}`,
      text: groupInsertText(slots, false),
      values: groupParameters(rows.map((r) => values([r])), slots),
    });
  },
};
/** CPU (µs) the backend with this pid has run so far (schedstat: nanoseconds on a CPU). */
const backendMicros = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;

async function time(client: pg.Client, backend: number, form: string): Promise<string> {
  const appends = await eventsOfIngest(size * groups, 1000);
  const rows: Row[] = appends.map(({ streamId, event: e }) => ({ stream_id: streamId, event_id: e.eventId, type: e.type, data: e.data, metadata: e.metadata, raw_body: e.attachment ?? null }));
  const millis: number[] = [];
  let cpuMicros = 0;
  const backendBefore = backendMicros(backend);
  for (let g = 0; g < groups; g++) {
    const started = performance.now();
    const cpu = process.cpuUsage();
    await forms[form]!(client, rows.slice(g * size, (g + 1) * size));
    const used = process.cpuUsage(cpu);
    cpuMicros += used.user + used.system;
    millis.push(performance.now() - started);
  }
  const backendPerRow = (backendMicros(backend) - backendBefore) / (groups * size);
  millis.sort((a, b) => a - b);
  const at = (q: number) => millis[Math.floor(millis.length * q)]!.toFixed(2);
  return `${form.padEnd(20)} ${size} rows: median ${at(0.5)} ms, p90 ${at(0.9)} ms a group; Node CPU ${(cpuMicros / groups / 1000).toFixed(2)} ms a group; backend ${backendPerRow.toFixed(1)} µs a row`;
}

const { client, drop } = await migratedClient('group_insert');
try {
  const backend = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  for (let round = 0; round < rounds; round++) for (const form of chosen ?? Object.keys(forms)) console.log(await time(client, backend, form));
} finally {
  await drop();
}
