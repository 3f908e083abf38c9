import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProjectionRunner, RunnerStatus } from '../../src/infrastructure/projection-runner';
import { createProjectionThread, type ProjectionThreadOptions } from '../../src/infrastructure/projection-thread';
import { waitFor } from '../support/service';

const dir = mkdtempSync(join(tmpdir(), 'projection-thread-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What the process's own runner, never started, reports: the committed checkpoint, not active. */
const standInStatus: RunnerStatus = { projection: 'ledger', active: false, position: 'p-5', eventsProjected: 5n, eventsBehind: 2n, secondsBehind: 1, lastError: null, parked: 0 };
const standIn: ProjectionRunner = {
  projection: 'ledger',
  start: () => expect.fail('a stand-in is never started'),
  stop: async () => {},
  status: async () => standInStatus,
  caughtUp: async () => expect.fail('a stand-in is never waited on'),
};

/** A projection the test's thread does not run: its proxy answers from this stand-in whether the thread runs or not. */
const grantsStatus: RunnerStatus = { ...standInStatus, projection: 'grants', position: 'p-3' };
const grantsStandIn: ProjectionRunner = { ...standIn, projection: 'grants', status: async () => grantsStatus };

/** The supervisor over the test's thread (`dying-projection-thread.ts`), with the stand-ins above. */
const fixtureThread = (options: Omit<ProjectionThreadOptions, 'entry' | 'standIns'>) =>
  createProjectionThread({
    entry: new URL('../fixtures/dying-projection-thread.ts', import.meta.url),
    standIns: [standIn, grantsStandIn],
    ...options,
  });

describe('projection runners on a thread of their own (the supervisor, with a thread of the test)', () => {
  it('answers from the stand-in until the thread runs, starts a thread that died again, answers from it, and drains it', async () => {
    const marker = join(dir, 'marker');
    const lines: { msg: string; code?: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const { runners: fixtureRunners, metrics } = fixtureThread({
      logger,
      env: { THREAD_MARKER: marker },
      restartDelayMs: () => 20,
    });
    const [runner] = fixtureRunners;
    expect(await runner!.status()).toEqual(standInStatus);
    await expect(runner!.caughtUp()).rejects.toThrow('not running');
    await expect(metrics.runtime()).rejects.toThrow('not running');
    expect(metrics.restarts()).toBe(0);

    runner!.start();
    runner!.start(); // every proxy's start lands on the one thread
    await waitFor('the restarted thread to answer', async () => (await runner!.status()).active, 30_000);
    expect(lines.filter((l) => l.msg === 'the projection thread exited; starting it again').map((l) => l.code)).toEqual([3]);
    expect(metrics.restarts()).toBe(1);
    // Its own heap, measured in the thread: the series come labelled with it, and none of the process's.
    const runtime = await metrics.runtime();
    const heap = runtime.find((m) => m.name === 'nodejs_heap_size_used_bytes');
    expect(heap?.values).toEqual([{ labels: { thread: 'projections' }, value: expect.any(Number) }]);
    expect(heap!.values[0]!.value).toBeGreaterThan(0);
    expect(runtime.map((m) => m.name)).toContain('nodejs_eventloop_lag_p99_seconds');
    expect(runtime.filter((m) => !m.name.startsWith('nodejs_') || m.name === 'nodejs_version_info')).toEqual([]);
    expect(await runner!.status()).toMatchObject({ projection: 'ledger', active: true, eventsProjected: 7n, eventsBehind: 0n });
    await runner!.caughtUp(1_000);
    expect((await runner!.status()).eventsBehind).toBe(1n); // the thread's runner was asked, once
    // Each proxy asks about its own projection: one the thread does not run is answered by its stand-in, and is not
    // caught up by waiting on the thread's others.
    const grants = fixtureRunners.find((r) => r.projection === 'grants')!;
    expect(await grants.status()).toEqual(grantsStatus);
    await expect(grants.caughtUp(1_000)).rejects.toThrow('runs no grants projection');
    expect((await runner!.status()).eventsBehind).toBe(1n);

    await runner!.stop();
    expect(readFileSync(marker, 'utf8')).toBe('stopped'); // its runners were stopped before it exited
    expect(await runner!.status()).toEqual(standInStatus);
    expect(lines.filter((l) => l.msg.startsWith('the projection thread exited'))).toHaveLength(1); // a drain is no death
    expect(metrics.restarts()).toBe(1);
    await expect(metrics.runtime()).rejects.toThrow('not running');
  });

  it('answers from the stand-in when the thread is silent past the wait, and ends a thread that never got ready', async () => {
    const marker = join(dir, 'silent');
    writeFileSync(marker, 'no death this time');
    const {
      runners: [runner],
      metrics,
    } = fixtureThread({
      logger: pino({ level: 'silent' }),
      env: { THREAD_MARKER: marker, THREAD_SILENT: '1' },
      statusWaitMs: 200,
    });
    runner!.start(); // what is asked of it waits in its queue while it loads
    expect(await runner!.status()).toEqual(standInStatus);
    await expect(runner!.caughtUp(100)).rejects.toThrow('did not answer within 300 ms');
    await expect(metrics.runtime()).rejects.toThrow('did not answer within 200 ms');
    await runner!.stop();
  });
});
