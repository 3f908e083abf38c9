import type { ApiProblem } from '../api';
import { useConsole } from '../context';

/** An API problem in words: its title, then its detail. */
export function ProblemMessage({ problem, retry }: { problem: ApiProblem; retry?: () => void }) {
  const ctx = useConsole();
  return (
    <div class="problem" role="alert">
      <p class="problem-title">{problem.title}</p>
      {problem.detail && <p class="problem-detail">{problem.detail}</p>}
      {retry && (
        <button type="button" onClick={retry}>
          {ctx.t.retry}
        </button>
      )}
    </div>
  );
}

export function Loading() {
  const { t } = useConsole();
  return (
    <p class="loading" role="status">
      {t.loading}
    </p>
  );
}
