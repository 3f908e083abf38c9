import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
/** The Node flags `npm start` and `npm run ledger` use (package.json), so processes here run as they do there. */
export const NODE_FLAGS = ['--max-old-space-size=192'];

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export interface ServiceProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  readonly exited: Promise<number | null>;
  alive(): boolean;
}

/**
 * A real process with the tsx loader (so that a signal reaches the process doing the work): `src/main.ts`, or
 * `src/cli.ts <command>`, the sources that `npm start` and `npm run ledger` build and run. `compiled`: plain Node on
 * the build (`dist/main.js`, `dist/cli.js`), no loader. Only PATH and the variables given are passed on.
 */
export function spawnProcess(args: readonly string[], env: Record<string, string>, { compiled = false } = {}): Omit<ServiceProcess, 'url'> {
  let output = '';
  const child = spawn(process.execPath, [...NODE_FLAGS, ...(compiled ? [] : ['--import', 'tsx']), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited, alive: () => child.exitCode === null && child.signalCode === null };
}

/** Starts the service (`compiled`: the build, dist/main.js) and waits until `/ready` answers 200. */
export async function startService(env: Record<string, string>, { readyTimeoutMs = 60_000, compiled = false } = {}): Promise<ServiceProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const proc = spawnProcess([compiled ? 'dist/main.js' : 'src/main.ts'], { PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env }, { compiled });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (!proc.alive()) throw new Error(`the service exited: ${proc.output()}`);
    if ((await fetch(`${url}/ready`).catch(() => null))?.ok) return { ...proc, url };
    if (Date.now() > deadline) {
      proc.child.kill('SIGKILL');
      throw new Error(`the service did not get ready: ${proc.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM, then the exit code. */
export async function stopService(proc: Pick<ServiceProcess, 'child' | 'exited'>): Promise<number | null> {
  proc.child.kill('SIGTERM');
  return proc.exited;
}

/** Polls `check` until it holds; throws naming `what` past the deadline. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs the service until it exits by itself (a refusal to start): its exit code and everything it wrote. */
export async function runServiceToExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const proc = spawnProcess(['src/main.ts'], { PORT: String(await freePort()), ...env });
  const code = await proc.exited;
  return { code, output: proc.output() };
}
