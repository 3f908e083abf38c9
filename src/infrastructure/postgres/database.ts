import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Logger } from 'pino';
import type { WriteSideDb, WriteSideTables } from './tables';

/**
 * One PostgreSQL for the whole service: the event store (unless EventStoreDB is configured), the read models
 * and the quarantine. Either a real server (DATABASE_URL) or PGlite embedded in the process, with the same SQL.
 */
export interface Database {
  /** Writes and everything that must not wait behind readers: ingest, quarantine, projections, maintenance. */
  readonly db: WriteSideDb;
  /**
   * The accountants' and auditors' queries: a pool of its own whose statements are cancelled after the read
   * statement timeout, so that reads can never take the connections ingest needs. PGlite: the same as `db`.
   */
  readonly readDb: WriteSideDb;
  readonly kind: 'postgres' | 'pglite';
  /**
   * Runs `work` while holding a session-level advisory lock on a connection of its own (PostgreSQL), or at
   * once (PGlite: one process, one connection, so nobody else can hold it). Returns false when the lock is taken.
   * `lost` resolves when that connection fails (the server crashed, restarted or ended the session): the lock is
   * gone and `work` must stop; a failure to connect rejects.
   */
  tryWithAdvisoryLock(key: bigint, work: (lost: Promise<void>) => Promise<void>): Promise<boolean>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  /** Connections for writes (ingest, projections). */
  readonly poolSize: number;
  /** Connections for the query routes; default a quarter of the write pool, at least 2. */
  readonly readPoolSize?: number;
  /** Read statements running longer are cancelled by the server (SQLSTATE 57014); 0 = never. */
  readonly readStatementTimeoutMs?: number;
  /** A session idle inside an open transaction this long is ended by the server; 0 = never. */
  readonly idleInTransactionTimeoutMs?: number;
  /** Told about connections that fail (each is dropped; the next query opens a new one). */
  readonly logger?: Logger;
}

export function openDatabase(options: DatabaseOptions): Database {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options) : openPglite(options.dataDir);
}

/**
 * Both drivers return the same JavaScript types: int8 and numeric as strings (money becomes bigint at the boundary,
 * never a float) and dates as 'YYYY-MM-DD' (a bank-local calendar day, not an instant).
 */
const TEXT_TYPES = { int8: 20, numeric: 1700, date: 1082 } as const;
const keepText = (value: string) => value;

/**
 * A client that prepares every data statement under a name derived from its text: the server plans it once per
 * connection instead of once per call. The ledger's queries are fixed texts with parameters, and planning was
 * costing more than running them (a statement query: 1.7 ms planning, 1.4 ms execution).
 */
class PreparingClient extends pg.Client {
  /** What this connection has prepared. A client is one connection: the pool replaces a failed one with a new
   *  client, which starts with nothing prepared (the server forgot the old session's statements with it). */
  private readonly prepared = new Set<string>();

  override query(...args: unknown[]): never {
    const [text, values] = args;
    if (typeof text === 'string' && Array.isArray(values) && COPY_FROM_STDIN.test(text)) return this.copyIn(text, values) as never;
    if (typeof text === 'string' && Array.isArray(values) && PREPARABLE.test(text)) {
      const name = statementName(text);
      // A bound: verify's scratch schemas make new texts each run, and a prepared statement lives as long as the
      // connection. Past the bound, new texts simply run unprepared.
      if (this.prepared.has(name) || this.prepared.size < MAX_PREPARED_PER_CONNECTION) {
        this.prepared.add(name);
        return (super.query as (...a: unknown[]) => never)({ name, text, values }, ...args.slice(2));
      }
    }
    return (super.query as (...a: unknown[]) => never)(...args);
  }

  /**
   * `COPY … FROM STDIN` with one parameter, the rows in COPY's text (or binary) format, sent as the copy's data: kysely only
   * hands a connection text and parameters, and bulk writes through COPY cost PostgreSQL a third of an INSERT from
   * a JSON parameter. The data is UTF-8 bytes. It runs on this connection, so inside the caller's transaction.
   */
  private async copyIn(text: string, values: readonly unknown[]): Promise<{ command: string; rowCount: number; rows: [] }> {
    const [data] = values;
    if (values.length !== 1 || !(data instanceof Uint8Array)) throw new Error('COPY FROM STDIN takes exactly one parameter: its data as UTF-8 bytes');
    const stream = (super.query as (q: unknown) => ReturnType<typeof copyFrom>)(copyFrom(text));
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.on('finish', resolve);
      stream.end(data);
    });
    return { command: 'COPY', rowCount: stream.rowCount, rows: [] };
  }
}
/** The driver's pool under each server's write side; PGlite's have none. */
const writePools = new WeakMap<WriteSideDb, pg.Pool>();

/**
 * The driver's pool under a server's write side (null for PGlite): for the one statement so hot that kysely's
 * executor, connection provider and result transform around it are measurable (the group insert of appends).
 */
export const driverPoolOf = (db: WriteSideDb): pg.Pool | null => writePools.get(db) ?? null;

/** Whether this pool's connections take `COPY … FROM STDIN` with its data as the one parameter (a server; PGlite does not). */
export const copiesFromStdin = (db: WriteSideDb): boolean => writePools.has(db);

const COPY_FROM_STDIN = /^\s*copy\s[^;]*\sfrom\s+stdin(\s+with\s+\(format binary\))?\s*$/i;
/** Names by text, so that a hot query's text (kilobytes) is not hashed again on every call. Bounded like the prepared set. */
const names = new Map<string, string>();
function statementName(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `bl_${createHash('sha1').update(text).digest('base64url')}`;
    if (names.size >= MAX_PREPARED_PER_CONNECTION) names.clear();
    names.set(text, name);
  }
  return name;
}
// Leading `--` comments do not make a statement unpreparable.
const PREPARABLE = /^\s*(?:--[^\n]*\n\s*)*(select|insert|update|delete|with)\b/i;
const MAX_PREPARED_PER_CONNECTION = 500;

const CONNECT_TIMEOUT_MS = 5_000;

/**
 * A read connection's first statement: a 2 MB value, made and freed (the planner folds it, so twice). glibc
 * (PostgreSQL's allocator on Linux) then serves blocks up to that size from the backend's heap and keeps up to twice
 * that free, instead of mapping each big block of a busy month's statement (its sorts, its window) fresh every time
 * and faulting it in page by page (15-30 us a page on this VM; 320-520 faults a busy statement, 0 after this). It
 * costs the connection ~1 030 page faults (~30 ms of backend CPU here) once.
 */
const RAISE_MALLOC_THRESHOLDS = `select length(repeat('x', 2097152))`;

function openPostgres(connectionString: string, options: DatabaseOptions): Database {
  const log = options.logger?.child({ component: 'postgres' });
  const types = {
    getTypeParser: (oid: number, format?: 'text' | 'binary') =>
      Object.values(TEXT_TYPES).includes(oid as never) ? keepText : pg.types.getTypeParser(oid, format),
  };
  const session = (statementTimeoutMs: number) => ({
    connectionString,
    types: types as never,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    // Sent in the start-up packet: every session of the pool has them from its first statement on.
    ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs } : {}),
    ...(options.idleInTransactionTimeoutMs ? { idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs } : {}),
  });
  const pools = [
    new pg.Pool({ ...session(0), max: options.poolSize, Client: PreparingClient }),
    new pg.Pool({
      ...session(options.readStatementTimeoutMs ?? 0),
      max: options.readPoolSize ?? Math.max(2, Math.floor(options.poolSize / 4)),
      Client: PreparingClient,
    }),
  ] as const;
  let reported = 0;
  const onConnectionError = (error: Error) => {
    // One line per outage is enough: every connection of both pools fails at once when the server goes away.
    if (Date.now() - reported > 5_000) log?.warn({ err: error }, 'a PostgreSQL connection failed; it is dropped and the next query opens a new one');
    reported = Date.now();
  };
  for (const pool of pools) {
    // A client that loses its server emits 'error' whatever it is doing: idle in the pool (pg-pool listens then),
    // or checked out between two statements of a transaction (nobody listens: the process would die). The
    // client is then not queryable; its next query fails, and the pool drops it on release.
    pool.on('connect', (client) => client.on('error', onConnectionError));
    pool.on('error', () => {});
  }
  const [writePool, readPool] = pools;
  // Queued before the query the connection was opened for (a client runs its queries in order).
  readPool.on('connect', (client) => void client.query(RAISE_MALLOC_THRESHOLDS).catch(() => {}));
  const db = new Kysely<WriteSideTables>({ dialect: new PostgresDialect({ pool: writePool }) });
  writePools.set(db, writePool);
  const readDb = new Kysely<WriteSideTables>({ dialect: new PostgresDialect({ pool: readPool }) });
  return {
    db,
    readDb,
    kind: 'postgres',
    async tryWithAdvisoryLock(key, work) {
      // A connection of its own, outside the pools: it lives as long as the lock, and when it dies the lock
      // dies with it (the server releases session locks of a lost session).
      const client = new pg.Client(session(0));
      let lose!: () => void;
      const lost = new Promise<void>((resolve) => (lose = resolve));
      client.on('error', (error) => (onConnectionError(error), lose()));
      client.on('end', () => lose());
      try {
        await client.connect();
        const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [key.toString()]);
        if (!rows[0]?.locked) return false;
        await work(lost);
        return true;
      } finally {
        // Ending the session releases the lock; a connection already lost ends at once.
        await client.end().catch(() => {});
      }
    },
    async close() {
      await Promise.all([db.destroy(), readDb.destroy()]);
    },
  };
}

function openPglite(dataDir: string): Database {
  mkdirSync(dataDir, { recursive: true });
  const db = new Kysely<WriteSideTables>({ dialect: new PGliteDialect(new PGlite(dataDir, { parsers: Object.fromEntries(Object.values(TEXT_TYPES).map((oid) => [oid, keepText])) })) });
  return {
    db,
    readDb: db,
    kind: 'pglite',
    async tryWithAdvisoryLock(_key, work) {
      await work(new Promise<void>(() => {}));
      return true;
    },
    close: () => db.destroy(),
  };
}

/** A stable 63-bit advisory-lock key for a name (FNV-1a): runners, the healer and anything else that must run once. */
export function advisoryLockKey(name: string): bigint {
  let h = 1469598103934665603n;
  for (const c of `balance-ledger:${name}`) h = ((h ^ BigInt(c.charCodeAt(0))) * 1099511628211n) & 0x7fffffffffffffffn;
  return h;
}
