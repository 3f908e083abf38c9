import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './service';

const run = promisify(execFile);

/**
 * A PostgreSQL cluster of the test's own, on a free port and a temporary data directory, that the test may crash
 * (`pg_ctl stop -m immediate`: every backend is killed, no checkpoint, recovery at the next start) and start again.
 * The shared server on 5432 is never touched.
 */
export interface PgCluster {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  readonly url: string;
  readonly port: number;
  /** Kills the server as a crash would: immediate shutdown, WAL recovery at the next start. */
  crash(): Promise<void>;
  start(): Promise<void>;
  /** Creates a database in the cluster; its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server (if running) and removes the data directory. Safe to call more than once. */
  destroy(): Promise<void>;
}

const BIN = process.env.TEST_PG_BIN ?? findPgBin();

function findPgBin(): string {
  for (const version of ['17', '16', '15', '14']) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (existsSync(join(dir, 'initdb'))) return dir;
  }
  return '';
}

/** initdb refuses to run as root: the cluster then belongs to the `postgres` system user. */
const asOwner = (file: string, args: string[]) =>
  process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, args);

/** Whether this machine can start a cluster of its own (PostgreSQL's server binaries are installed). */
export const canStartPgCluster = (): boolean => BIN !== '';

export async function startPgCluster(label: string): Promise<PgCluster> {
  const dir = mkdtempSync(join(tmpdir(), `bl-pg-${label}-`));
  if (process.getuid?.() === 0) chownSync(dir, ...(await postgresIds()));
  const data = join(dir, 'data');
  const port = await freePort();
  const ctl = (...args: string[]) => asOwner(join(BIN, 'pg_ctl'), ['-D', data, ...args]);
  let running = false;
  let destroyed = false;
  await asOwner(join(BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  const cluster: PgCluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async start() {
      await ctl('-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=100`, '-l', join(dir, 'log'), '-w', '-t', '60', 'start');
      running = true;
    },
    async crash() {
      await ctl('-m', 'immediate', '-w', 'stop');
      running = false;
    },
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: this.url });
      await client.connect();
      try {
        await client.query(`create database ${name}`);
      } finally {
        await client.end();
      }
      return this.url.replace(/\/postgres$/, `/${name}`);
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      if (running) await ctl('-m', 'immediate', '-w', 'stop').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await cluster.start();
  } catch (error) {
    await cluster.destroy();
    throw error;
  }
  return cluster;
}

async function postgresIds(): Promise<[number, number]> {
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return [Number(uid.trim()), Number(gid.trim())];
}
