import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { createTestDatabase } from '../test/support/postgres';
import { freePort, NODE_FLAGS, ROOT } from '../test/support/service';

export { freePort, NODE_FLAGS, ROOT } from '../test/support/service';

/** A database of the benchmark's own, dropped afterwards (the same helper the tests use). */
export async function freshDatabase(label: string): Promise<{ url: string; drop: () => Promise<void> }> {
  return createTestDatabase(`bench_${label}`);
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

/** A Node process without HTTP (the projector): its memory, and a way to stop it. */
export function startWorker(script: string, args: readonly string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  // Sampled while the process lives: /proc forgets a process once it has exited.
  let peak = 0;
  const sample = () => {
    try {
      peak = Math.max(peak, Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024));
    } catch {}
  };
  const sampler = setInterval(sample, 200);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => (clearInterval(sampler), resolve(code))));
  return {
    exited,
    peakRssMb: () => (sample(), peak),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface LoadResult {
  readonly requests: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly non2xx: number;
}

export async function load(options: autocannon.Options): Promise<LoadResult> {
  const result = await autocannon(options);
  return {
    requests: result.requests.total,
    perSecond: Math.round(result.requests.total / (result.duration || 1)),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}
