import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
/** The Node flags `npm start` and `npm run ledger` use (package.json), so processes here run as they do there. */
export const NODE_FLAGS = ['--max-old-space-size=192'];

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export interface Service {
  readonly url: string;
  readonly process: ChildProcess;
  /** Peak resident memory of the process so far (VmHWM), in MB. */
  peakRssMb(): number;
  stop(): Promise<void>;
}

/** Starts a Node process (one process, so its memory is its own) and waits until `readyPath` answers. */
export async function startService(
  script: string,
  env: Record<string, string>,
  readyPath = '/health',
  nodeFlags: readonly string[] = [],
): Promise<Service> {
  const port = await freePort();
  const child = spawn(process.execPath, [...NODE_FLAGS, ...nodeFlags, '--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}${readyPath}`, { method: readyPath === '/health' ? 'GET' : 'POST', body: readyPath === '/health' ? undefined : '{}', headers: { 'content-type': 'application/json' } });
      if (res.status < 500) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${script} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    process: child,
    peakRssMb() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return Math.round(kb / 1024);
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

