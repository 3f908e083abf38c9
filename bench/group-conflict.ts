/**
 * The group insert of the webhook path with and without `on conflict do nothing`, on fresh rows (no conflict), the
 * two forms alternated group by group on one connection in a fresh database of the local server: the median round
 * trip per group and the CPU the server's backend used per row (from /proc, so the server must run on this machine).
 *
 *   npx tsx bench/group-conflict.ts [groups per form = 200]
 */
import { readFileSync } from 'node:fs';
import { APPEND_LOCK } from '../src/infrastructure/eventstore/postgres-appends';
import { migratedClient } from './lib';
import { eventsOfIngest } from './store';

const SIZE = 64;
const groups = Number(process.argv[2] ?? 200);
const values = Array.from({ length: SIZE }, (_, i) => `($${i * 6 + 2}::text, $${i * 6 + 3}::uuid, $${i * 6 + 4}::text, $${i * 6 + 5}::json, $${i * 6 + 6}::json, $${i * 6 + 7}::text)`).join(', ');
// The events, then their attachments from what the insert returned (as insertGroup writes them).
const insert = (tail: string) => `with append_lock as (select pg_advisory_xact_lock($1::bigint)),
  g as materialized (select * from (values ${values}) as g(stream_id, event_id, type, data, metadata, raw_body)),
  inserted as (
    insert into events (stream_id, revision, event_id, type, data, metadata)
    select g.stream_id, 0, g.event_id, g.type, g.data, g.metadata from append_lock, g ${tail}
    returning event_id, seq),
  attached as (
    insert into event_attachments (seq, body)
    select i.seq, g.raw_body from inserted i join g on g.event_id = i.event_id where g.raw_body is not null)
  select event_id, seq from inserted`;
const forms: Record<string, string> = { 'on conflict do nothing': insert('on conflict do nothing'), 'plain insert': insert('') };

const { client, drop } = await migratedClient('group_conflict');
try {
  const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  const backendMicros = () => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000; // utime + stime, in clock ticks of 10 ms
  };
  const appends = await eventsOfIngest(SIZE * groups * 2, 1000);
  const rows = appends.map(({ streamId, event: e }) => [streamId, e.eventId, e.type, JSON.stringify(e.data), JSON.stringify(e.metadata), e.attachment ?? null]);
  const seen: Record<string, { millis: number[]; micros: number }> = {};
  let next = 0;
  for (let g = 0; g < groups; g++) {
    for (const [name, text] of Object.entries(forms)) {
      const form = (seen[name] ??= { millis: [], micros: 0 });
      const cpu = backendMicros();
      const started = performance.now();
      await client.query({ name, text, values: [APPEND_LOCK.toString(), ...rows.slice(next, next + SIZE).flat()] });
      form.millis.push(performance.now() - started);
      form.micros += backendMicros() - cpu;
      next += SIZE;
    }
  }
  for (const [name, { millis, micros }] of Object.entries(seen)) {
    millis.sort((a, b) => a - b);
    console.log(`${name.padEnd(24)} median ${millis[millis.length >> 1]!.toFixed(2)} ms a group of ${SIZE}; backend CPU ${(micros / groups / SIZE).toFixed(1)} µs a row`);
  }
} finally {
  await drop();
}
