import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiProblem } from './api';

export type Loaded<T> =
  | { state: 'loading' }
  | { state: 'failed'; problem: ApiProblem; retry: () => void }
  | { state: 'ready'; value: T; reload: () => void };

/** Runs `load` whenever `deps` change; a later answer never overwrites a newer one. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [result, setResult] = useState<Loaded<T>>({ state: 'loading' });
  const [round, setRound] = useState(0);
  const again = useCallback(() => setRound((r) => r + 1), []);
  useEffect(() => {
    let current = true;
    setResult({ state: 'loading' });
    load().then(
      (value) => current && setResult({ state: 'ready', value, reload: again }),
      (error: unknown) =>
        current &&
        setResult({
          state: 'failed',
          problem: error instanceof ApiProblem ? error : new ApiProblem(0, 'Unexpected error', String(error)),
          retry: again,
        }),
    );
    return () => {
      current = false;
    };
  }, [...deps, round]);
  return result;
}
