import type { ProjectionStatus } from '../api';
import { Loading, ProblemMessage } from '../components/problem';
import { TableRegion } from '../components/table-region';
import { useConsole } from '../context';
import { formatCount } from '../format';
import { useLoad } from '../use-load';

/** For operators: each projection's checkpoint, lag, parked events and last error (GET /projections). */
export function ProjectionsPage() {
  const { api, t, lang } = useConsole();
  const loaded = useLoad(() => api.json<{ projections: ProjectionStatus[] }>('/projections'), [api]);
  return (
    <section aria-labelledby="projections-title">
      <h1 id="projections-title">{t.projectionsTitle}</h1>
      {loaded.state === 'loading' && <Loading />}
      {loaded.state === 'failed' && <ProblemMessage problem={loaded.problem} retry={loaded.retry} />}
      {loaded.state === 'ready' && (
        <TableRegion label={t.projectionsTable}>
          <thead>
            <tr>
              <th scope="col">{t.projection}</th>
              <th scope="col">{t.active}</th>
              <th scope="col">{t.position}</th>
              <th scope="col" class="num">
                {t.eventsProjected}
              </th>
              <th scope="col" class="num">
                {t.eventsBehind}
              </th>
              <th scope="col" class="num">
                {t.secondsBehind}
              </th>
              <th scope="col" class="num">
                {t.parked}
              </th>
              <th scope="col">{t.lastError}</th>
            </tr>
          </thead>
          <tbody>
            {loaded.value.projections.map((p) => (
              <tr key={p.projection}>
                <td>{p.projection}</td>
                <td>{p.active ? t.yes : t.no}</td>
                <td>
                  <code>{p.position ?? '—'}</code>
                </td>
                <td class="num">{formatCount(p.eventsProjected, lang)}</td>
                <td class="num">{p.eventsBehind === null ? '—' : formatCount(p.eventsBehind, lang)}</td>
                <td class="num">{formatCount(Math.round(p.secondsBehind), lang)}</td>
                <td class="num">{formatCount(p.parked, lang)}</td>
                <td>{p.lastError ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </TableRegion>
      )}
    </section>
  );
}
