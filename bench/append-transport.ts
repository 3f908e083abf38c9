/**
 * Our event store's append as ingest drives it (64 in flight, group commit, the service's pool) in variants of the
 * connection: over TCP loopback (`tcp`), over PostgreSQL's Unix socket (`socket`), with the session's WAL full-page
 * images compressed (`wal-lz4`, a superuser's session setting), alternated round by round, each on a fresh database
 * and fresh events. Prints, per append, the wall time, this process's CPU (the driver's work), the CPU of the
 * database's backends (from /proc) and the WAL written (the server's, so other databases' writes count too).
 *
 *   flock /tmp/balance-ledger-cpu.lock npx tsx bench/append-transport.ts [appends = 20000] [rounds = 3] [variants = tcp,socket]
 */
import pg from 'pg';
import { openRoot } from '../src/composition-root';
import { loadConfig } from '../src/config';
import { backendMicrosBetween, backendTicks, freshDatabase } from './lib';
import { eventsOfIngest, run } from './store';

const count = Number(process.argv[2] ?? 20_000);
const rounds = Number(process.argv[3] ?? 3);
const variants = (process.argv[4] ?? 'tcp,socket').split(',') as Variant[];
const SOCKET_DIR = '/var/run/postgresql';
const IN_FLIGHT = 64;

type Variant = 'tcp' | 'socket' | 'wal-lz4';
const URL_OF: Record<Variant, (url: URL) => void> = {
  tcp: () => {},
  // The same database reached over the socket: libpq's and pg's `host` parameter names the socket's directory.
  socket: (u) => ((u.hostname = 'localhost'), (u.port = ''), u.searchParams.set('host', SOCKET_DIR)),
  'wal-lz4': (u) => u.searchParams.set('options', '-c wal_compression=lz4'),
};

async function walLsn(url: string): Promise<bigint> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ lsn: string }>(`select (pg_current_wal_lsn() - '0/0'::pg_lsn)::text as lsn`);
    return BigInt(rows[0]!.lsn.split('.')[0]!);
  } finally {
    await client.end();
  }
}

async function once(transport: Variant) {
  const db = await freshDatabase('transport');
  const u = new URL(db.url);
  URL_OF[transport](u);
  const url = u.toString();
  const root = await openRoot(loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent' }));
  try {
    const store = root.resolve('eventStore');
    const appends = await eventsOfIngest(count, 1000);
    const append = (a: (typeof appends)[number]) => store.appendToStream(a.streamId, [a.event], 'no_stream');
    await run(appends.slice(0, 1000), IN_FLIGHT, append);
    const timed = appends.slice(1000);
    const lsn = await walLsn(db.url);
    const [cpu, backends, started] = [process.cpuUsage(), backendTicks(db.name), performance.now()];
    await run(timed, IN_FLIGHT, append);
    const wall = performance.now() - started;
    const wal = Number((await walLsn(db.url)) - lsn) / timed.length;
    const node = process.cpuUsage(cpu);
    const pg = backendMicrosBetween(backends, backendTicks(db.name));
    const per = (micros: number) => (micros / timed.length).toFixed(1);
    console.log(`${transport.padEnd(6)} ${Math.round(timed.length / (wall / 1000))} appends/s, per append: wall ${per(wall * 1000)} µs, node ${per(node.user + node.system)} µs, backends ${per(pg)} µs, WAL ${Math.round(wal)} bytes`);
  } finally {
    await root.close();
    await db.drop();
  }
}

for (let r = 0; r < rounds; r++) {
  for (const variant of r % 2 === 0 ? variants : [...variants].reverse()) await once(variant);
}
