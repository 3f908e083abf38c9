import { useMemo, useState } from 'preact/hooks';
import type { Account } from '../api';
import { Loading, ProblemMessage } from '../components/problem';
import { TableRegion } from '../components/table-region';
import { useConsole } from '../context';
import { compareMoney, formatCount, formatDateTime, formatMoney } from '../format';
import { statementHref } from '../router';
import { useLoad } from '../use-load';

type SortKey = 'bank' | 'accountNumber' | 'balance' | 'lastTransaction' | 'openBreaks' | 'lateDeliveries';
const PAGE_SIZE = 50;

const bankOf = (a: Account) => a.fiName ?? a.fiId;

const COMPARE: Record<SortKey, (a: Account, b: Account) => number> = {
  bank: (a, b) => bankOf(a).localeCompare(bankOf(b)) || a.accountNumber.localeCompare(b.accountNumber),
  accountNumber: (a, b) => a.accountNumber.localeCompare(b.accountNumber),
  balance: (a, b) => compareMoney(a.balance, b.balance),
  lastTransaction: (a, b) => (Date.parse(a.lastTransactionAt ?? '') || 0) - (Date.parse(b.lastTransactionAt ?? '') || 0),
  openBreaks: (a, b) => a.openBreaks - b.openBreaks,
  lateDeliveries: (a, b) => a.lateDeliveries - b.lateDeliveries,
};

/** Every account, searched and sorted in the page (all pages of GET /accounts are read), shown 50 at a time. */
export function AccountsPage() {
  const { api, t } = useConsole();
  const loaded = useLoad(() => api.all<Account>('/accounts', 'accounts'), [api]);
  return (
    <section aria-labelledby="accounts-title">
      <h1 id="accounts-title">{t.accounts}</h1>
      {loaded.state === 'loading' && <Loading />}
      {loaded.state === 'failed' && <ProblemMessage problem={loaded.problem} retry={loaded.retry} />}
      {loaded.state === 'ready' && <AccountsTable accounts={loaded.value} />}
    </section>
  );
}

function AccountsTable({ accounts }: { accounts: Account[] }) {
  const { t, lang } = useConsole();
  const [query, setQuery] = useState('');
  const [sort, setSort] = useState<{ key: SortKey; dir: 1 | -1 }>({ key: 'bank', dir: 1 });
  const [page, setPage] = useState(0);
  const showParked = accounts.some((a) => a.parkedEvents > 0); // a column only when some account has one
  const rows = useMemo(() => {
    const q = query.trim().toLowerCase();
    const found = q
      ? accounts.filter((a) => a.accountNumber.toLowerCase().includes(q) || bankOf(a).toLowerCase().includes(q) || a.fiId.toLowerCase().includes(q))
      : accounts;
    return [...found].sort((a, b) => sort.dir * COMPARE[sort.key](a, b));
  }, [accounts, query, sort]);
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  const current = Math.min(page, pages - 1);
  const shown = rows.slice(current * PAGE_SIZE, (current + 1) * PAGE_SIZE);

  const header = (key: SortKey, label: string, numeric = false) => {
    const active = sort.key === key;
    return (
      <th scope="col" class={numeric ? 'num' : undefined} aria-sort={active ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none'}>
        <button
          type="button"
          class="sort"
          title={t.sortBy(label)}
          onClick={() => setSort(active ? { key, dir: sort.dir === 1 ? -1 : 1 } : { key, dir: 1 })}
        >
          {label}
          <span aria-hidden="true">{active ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}</span>
        </button>
      </th>
    );
  };

  return (
    <>
      <div class="toolbar">
        <label for="account-search">{t.searchAccounts}</label>
        <input
          id="account-search"
          type="search"
          placeholder={t.searchPlaceholder}
          value={query}
          onInput={(e) => {
            setQuery((e.target as HTMLInputElement).value);
            setPage(0);
          }}
        />
      </div>
      <TableRegion label={t.accountsTable} tableClass="accounts">
        <thead>
          <tr>
            {header('bank', t.bank)}
            {header('accountNumber', t.accountNumber)}
            {header('balance', t.balance, true)}
            {header('lastTransaction', t.lastTransaction)}
            {header('openBreaks', t.openBreaks, true)}
            {header('lateDeliveries', t.lateDeliveries, true)}
            {showParked && (
              <th scope="col" class="num">
                {t.parkedEvents}
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {shown.map((a) => (
            <tr key={a.id} data-account-number={a.accountNumber}>
              <td>{bankOf(a)}</td>
              <td>
                <a href={statementHref(a.id)} class="account-link">
                  {a.accountNumber}
                </a>
              </td>
              <td class="num money">{formatMoney(a.balance, lang, a.currency)}</td>
              <td>{formatDateTime(a.lastTransactionAt, lang)}</td>
              <td class={`num${a.openBreaks > 0 ? ' warn' : ''}`}>{formatCount(a.openBreaks, lang)}</td>
              <td class={`num${a.lateDeliveries > 0 ? ' warn' : ''}`}>{formatCount(a.lateDeliveries, lang)}</td>
              {showParked && <td class="num">{formatCount(a.parkedEvents, lang)}</td>}
            </tr>
          ))}
        </tbody>
      </TableRegion>
      {rows.length === 0 ? (
        <p>{t.noAccounts}</p>
      ) : (
        <nav class="pager" aria-label={t.accountsTable}>
          <button type="button" disabled={current === 0} onClick={() => setPage(current - 1)}>
            {t.previousPage}
          </button>
          <span>
            {t.showing(
              formatCount(current * PAGE_SIZE + 1, lang),
              formatCount(current * PAGE_SIZE + shown.length, lang),
              formatCount(rows.length, lang),
            )}
          </span>
          <button type="button" disabled={current >= pages - 1} onClick={() => setPage(current + 1)}>
            {t.nextPage}
          </button>
        </nav>
      )}
    </>
  );
}
