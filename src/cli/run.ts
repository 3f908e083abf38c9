import { Presets, SingleBar } from 'cli-progress';
import { type OpenOptions, openRoot, type Root } from '../composition-root';
import { loadConfig } from '../config';
import type { Progress } from '../infrastructure/read-model-maintenance';

/**
 * A one-shot command's graph, from the composition root over the same configuration as the service, closed when the
 * command is done. The log speaks only of trouble unless LOG_LEVEL asks for more, on standard error: the command
 * prints its own results on standard output (a report, NDJSON), which a log line must not break.
 */
export async function withRoot<T>(work: (root: Root) => Promise<T>, options: OpenOptions = {}): Promise<T> {
  const config = loadConfig();
  const overrides = { logDestination: process.stderr, ...options.overrides };
  const root = await openRoot({ ...config, logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel }, { ...options, overrides });
  try {
    return await work(root);
  } finally {
    await root.close();
  }
}

/** Pretty JSON with bigints as decimal strings. */
export const jsonText = (value: unknown): string => JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2);

export function progressBar(label: string) {
  const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} events  {percentage}%  {eta_formatted} left`, hideCursor: true }, Presets.shades_classic);
  let started = false;
  return {
    update({ eventsDone, eventsTotal }: Progress) {
      if (!started) {
        bar.start(eventsTotal ?? eventsDone, 0);
        started = true;
      }
      // The total may come after the first batches (rebuild counts beside the replay).
      bar.setTotal(eventsTotal ?? eventsDone);
      bar.update(eventsDone);
    },
    stop: () => started && bar.stop(),
  };
}
