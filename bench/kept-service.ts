/**
 * What the scratch harnesses over a database the statements bench kept (first-statement.ts, statement-tail.ts)
 * share: a service started from a build's dist/ with a hook loaded, as the bench starts its own (API key, no
 * statement rate limit), that fills the cache as the bench does (the requests: lib.ts `benchStatements`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { BENCH_API_TOKEN, BENCH_WEBHOOK_TOKEN, freePort } from './lib';

export const headers = { authorization: `Bearer ${BENCH_API_TOKEN}` };

export interface KeptService {
  readonly url: string;
  readonly child: ChildProcess;
  /** One answer's bytes (a non-2xx throws). */
  get(path: string): Promise<Buffer>;
  /** The bench's pass over `paths`, 8 at a time (it fills a cache): the SHA-256 of every answer, in order. */
  pass(paths: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

/** `node <flags> --import <hook> dist/main.js` in `dir` over `databaseUrl`, once `/health` answers. */
export async function startKeptService(
  dir: string,
  databaseUrl: string,
  { hook, nodeArgs = [], env = {}, stdout = 'ignore' }: { hook: string; nodeArgs?: readonly string[]; env?: Record<string, string>; stdout?: 'ignore' | NodeJS.WriteStream },
): Promise<KeptService> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--max-old-space-size=192', ...nodeArgs, '--import', hook, 'dist/main.js'], {
    cwd: dir,
    stdio: ['ignore', stdout, 'inherit'],
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      API_TOKEN: BENCH_API_TOKEN,
      WEBHOOK_TOKEN: BENCH_WEBHOOK_TOKEN,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_STATEMENTS: '0',
      PORT: String(port),
      HOST: '127.0.0.1',
      DRAIN_DELAY_MS: '0',
      ...env,
    },
  });
  const exited = new Promise((r) => child.once('exit', r));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    child.kill('SIGTERM');
    await exited;
  };
  for (let tries = 0; !(await fetch(`${url}/health`).catch(() => null))?.ok; tries++) {
    if (tries > 600) {
      await stop();
      throw new Error('the service did not start');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const get = async (path: string) => {
    const res = await fetch(`${url}${path}`, { headers });
    if (!res.ok) throw new Error(`${path}: ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };
  const pass = async (paths: readonly string[]) => {
    const hash = createHash('sha256');
    for (let i = 0; i < paths.length; i += 8) for (const body of await Promise.all(paths.slice(i, i + 8).map(get))) hash.update(body);
    return hash.digest('hex').slice(0, 16);
  };
  return { url, child, get, pass, stop };
}
