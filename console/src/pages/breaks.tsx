import { useMemo, useState } from 'preact/hooks';
import type { Account, Anomaly, Break } from '../api';
import { Loading, ProblemMessage } from '../components/problem';
import { healingText, TableRegion } from '../components/table-region';
import { useConsole } from '../context';
import { formatDateTime, formatMoney } from '../format';
import { statementHref } from '../router';
import { useLoad } from '../use-load';

/** Account numbers for the lists across accounts (they carry account ids). */
function useAccounts() {
  const { api } = useConsole();
  return useLoad(async () => new Map((await api.all<Account>('/accounts', 'accounts')).map((a) => [a.id, a])), [api]);
}

function AccountName({ accounts, id }: { accounts: Map<string, Account>; id: string }) {
  const a = accounts.get(id);
  return a ? (
    <>
      {a.accountNumber} <span class="muted small">{a.fiName ?? a.fiId}</span>
    </>
  ) : (
    <code>{id}</code>
  );
}

/** Breaks across accounts, open first (then the newest), each linking to its place in the statement. */
export function BreaksPage() {
  const { api, t, lang } = useConsole();
  const accounts = useAccounts();
  const breaks = useLoad(() => api.all<Break>('/breaks', 'breaks'), [api]);
  const [filter, setFilter] = useState<'all' | 'open' | 'resolved'>('all');
  const rows = useMemo(() => {
    if (breaks.state !== 'ready') return [];
    return breaks.value
      .filter((b) => filter === 'all' || b.status === filter)
      .sort((a, b) => (a.status === b.status ? b.openedAt.localeCompare(a.openedAt) : a.status === 'open' ? -1 : 1));
  }, [breaks, filter]);
  return (
    <section aria-labelledby="breaks-title">
      <h1 id="breaks-title">{t.breaksTitle}</h1>
      <div class="toolbar">
        <label for="break-filter">{t.statusFilter}</label>
        <select id="break-filter" value={filter} onChange={(e) => setFilter((e.target as HTMLSelectElement).value as typeof filter)}>
          <option value="all">{t.all}</option>
          <option value="open">{t.open}</option>
          <option value="resolved">{t.resolved}</option>
        </select>
      </div>
      {(breaks.state === 'loading' || accounts.state === 'loading') && <Loading />}
      {breaks.state === 'failed' && <ProblemMessage problem={breaks.problem} retry={breaks.retry} />}
      {accounts.state === 'failed' && <ProblemMessage problem={accounts.problem} retry={accounts.retry} />}
      {breaks.state === 'ready' && accounts.state === 'ready' && (
        rows.length === 0 ? (
          <p>{t.noBreaks}</p>
        ) : (
          <TableRegion label={t.breaksTable}>
            <thead>
              <tr>
                <th scope="col">{t.status}</th>
                <th scope="col">{t.account}</th>
                <th scope="col" class="num">
                  {t.missingAmount}
                </th>
                <th scope="col">{t.opened}</th>
                <th scope="col">{t.healing}</th>
                <th scope="col">{t.resolution}</th>
                <th scope="col">
                  <span class="visually-hidden">{t.showInStatement}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((b) => (
                <tr key={b.id} data-break-id={b.id} class={b.status === 'open' ? 'open' : undefined}>
                  <td>{b.status === 'open' ? <strong class="warn">{t.open}</strong> : t.resolved}</td>
                  <td>
                    <AccountName accounts={accounts.value} id={b.accountId} />
                  </td>
                  <td class="num money">
                    {formatMoney(b.missingAmount, lang, accounts.value.get(b.accountId)?.currency ?? 'VND')}
                  </td>
                  <td>{formatDateTime(b.openedAt, lang)}</td>
                  <td>{healingText(b, t, lang)}</td>
                  <td>{b.resolution ? `${b.resolution}${b.resolvedBySource ? ` (${b.resolvedBySource})` : ''}, ${formatDateTime(b.resolvedAt, lang)}` : '—'}</td>
                  <td>
                    <a href={statementHref(b.accountId, { tx: b.afterTransactionId, break: b.status === 'open' ? b.id : undefined })}>
                      {t.showInStatement}
                    </a>
                  </td>
                </tr>
              ))}
            </tbody>
          </TableRegion>
        )
      )}
    </section>
  );
}

/** Late deliveries and conflicting repeats across accounts, newest first, each linking to its line. */
export function AnomaliesPage() {
  const { api, t, lang } = useConsole();
  const accounts = useAccounts();
  const anomalies = useLoad(async () => {
    const all = await api.all<Anomaly>('/anomalies', 'anomalies');
    return all.sort((a, b) => b.receivedAt.localeCompare(a.receivedAt));
  }, [api]);
  return (
    <section aria-labelledby="anomalies-title">
      <h1 id="anomalies-title">{t.anomaliesTitle}</h1>
      {(anomalies.state === 'loading' || accounts.state === 'loading') && <Loading />}
      {anomalies.state === 'failed' && <ProblemMessage problem={anomalies.problem} retry={anomalies.retry} />}
      {accounts.state === 'failed' && <ProblemMessage problem={accounts.problem} retry={accounts.retry} />}
      {anomalies.state === 'ready' && accounts.state === 'ready' && (
        anomalies.value.length === 0 ? (
          <p>{t.noAnomalies}</p>
        ) : (
          <TableRegion label={t.anomaliesTable}>
            <thead>
              <tr>
                <th scope="col">{t.kind}</th>
                <th scope="col">{t.account}</th>
                <th scope="col">{t.transaction}</th>
                <th scope="col">{t.receivedAt}</th>
                <th scope="col">{t.source}</th>
                <th scope="col">{t.details}</th>
              </tr>
            </thead>
            <tbody>
              {anomalies.value.map((a) => (
                <tr key={`${a.kind}-${a.eventId}`}>
                  <td>{a.kind === 'late' ? t.kindLate : t.kindConflict}</td>
                  <td>
                    <AccountName accounts={accounts.value} id={a.accountId} />
                  </td>
                  <td>
                    <a href={statementHref(a.accountId, { tx: a.transactionId })}>{a.transactionId}</a>
                  </td>
                  <td>{formatDateTime(a.receivedAt, lang)}</td>
                  <td>{a.source}</td>
                  <td class="small">
                    {Object.entries(a.details)
                      .filter(([, v]) => v !== null)
                      .map(([k, v]) => `${k}: ${v}`)
                      .join(' · ')}
                  </td>
                </tr>
              ))}
            </tbody>
          </TableRegion>
        )
      )}
    </section>
  );
}
