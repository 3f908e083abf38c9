import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { type Account, ApiProblem, type Break, type Line, type Statement } from '../api';
import { BalanceChart } from '../components/balance-chart';
import { Loading, ProblemMessage } from '../components/problem';
import { healingText, TableRegion } from '../components/table-region';
import { useConsole } from '../context';
import { bankDate, formatCount, formatDate, formatDateTime, formatMonth, formatMoney, monthPeriod, periodMonth, shiftMonth } from '../format';
import { statementHref } from '../router';
import { useLoad } from '../use-load';
import { LineDetail } from './line-detail';

const LINES_PAGE = 500;

interface Target {
  readonly from: string;
  readonly to: string;
}

/**
 * One account's statement. Without a period it opens the month of the account's last transaction, or the month
 * of the line it was sent to (`tx`: a break or a late delivery in the lists), never an empty current month.
 */
export function StatementPage({ accountId, params }: { accountId: string; params: URLSearchParams }) {
  const { api, t } = useConsole();
  const from = params.get('from');
  const to = params.get('to');
  const tx = params.get('tx');
  const breakId = params.get('break');
  const loaded = useLoad(async () => {
    const account = await api.json<Account>(`/accounts/${encodeURIComponent(accountId)}`);
    let period: Target;
    if (from && to) period = { from, to };
    else if (tx) {
      const line = await api.json<Line>(`/accounts/${encodeURIComponent(accountId)}/lines/${encodeURIComponent(tx)}`);
      period = monthPeriod(line.transactionDate.slice(0, 7));
    } else {
      const last = account.lastTransactionAt ? bankDate(account.lastTransactionAt) : bankDate(new Date().toISOString());
      period = monthPeriod(last.slice(0, 7));
    }
    return { account, period };
  }, [api, accountId, from, to, tx]);

  return (
    <section aria-labelledby="statement-title">
      <p>
        <a href="#/accounts">← {t.backToAccounts}</a>
      </p>
      {loaded.state === 'loading' && <Loading />}
      {loaded.state === 'failed' && <ProblemMessage problem={loaded.problem} retry={loaded.retry} />}
      {loaded.state === 'ready' && (
        <AccountStatement
          key={`${loaded.value.period.from}/${loaded.value.period.to}`}
          account={loaded.value.account}
          period={loaded.value.period}
          target={{ tx, breakId }}
        />
      )}
    </section>
  );
}

function AccountStatement({ account, period, target }: { account: Account; period: Target; target: { tx: string | null; breakId: string | null } }) {
  const { api, t, lang } = useConsole();
  const base = `/accounts/${encodeURIComponent(account.id)}/statement?from=${period.from}&to=${period.to}`;
  const [lines, setLines] = useState<Line[]>([]);
  const [more, setMore] = useState<{ busy: boolean; problem: ApiProblem | null }>({ busy: false, problem: null });
  const loaded = useLoad(async () => {
    let page = await api.json<Statement>(`${base}&limit=${LINES_PAGE}`);
    const all = [...page.lines];
    // Sent to a line or a break: read on until its line is loaded.
    const wanted = target.tx ?? page.breaks.find((b) => b.id === target.breakId)?.afterTransactionId ?? null;
    while (wanted && page.nextCursor && !all.some((l) => l.transactionId === wanted)) {
      page = await api.json<Statement>(`${base}&limit=${LINES_PAGE}&cursor=${encodeURIComponent(page.nextCursor)}`);
      all.push(...page.lines);
    }
    setLines(all);
    return { ...page, lines: all };
  }, [api, base]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  useEffect(() => {
    if (loaded.state === 'ready') setNextCursor(loaded.value.nextCursor);
  }, [loaded]);

  const title = t.statementOf(account.fiName ?? account.fiId, account.accountNumber);
  if (loaded.state !== 'ready') {
    return (
      <>
        <h1 id="statement-title">{title}</h1>
        <PeriodPicker accountId={account.id} period={period} />
        {loaded.state === 'loading' ? <Loading /> : <ProblemMessage problem={loaded.problem} retry={loaded.retry} />}
      </>
    );
  }
  const s = loaded.value;
  const loadMore = async () => {
    if (!nextCursor) return;
    setMore({ busy: true, problem: null });
    try {
      const page = await api.json<Statement>(`${base}&limit=${LINES_PAGE}&cursor=${encodeURIComponent(nextCursor)}`);
      setLines((previous) => [...previous, ...page.lines]);
      setNextCursor(page.nextCursor);
      setMore({ busy: false, problem: null });
    } catch (error) {
      setMore({ busy: false, problem: error instanceof ApiProblem ? error : new ApiProblem(0, String(error), undefined) });
    }
  };
  const money = (v: string | null) => formatMoney(v, lang, s.currency);
  return (
    <>
      <h1 id="statement-title">{title}</h1>
      <PeriodPicker accountId={account.id} period={period} />
      <h2 class="period-title">
        {periodMonth(s.from, s.to) ? formatMonth(s.from.slice(0, 7), lang) : `${formatDate(s.from, lang)} – ${formatDate(s.to, lang)}`}
      </h2>
      <dl class="summary">
        <div>
          <dt>{t.opening}</dt>
          <dd class="money">{money(s.openingBalance)}</dd>
        </div>
        <div>
          <dt>{t.closing}</dt>
          <dd class="money">{money(s.closingBalance)}</dd>
        </div>
        <div>
          <dt>{t.credits}</dt>
          <dd class="money">{money(s.totalCredits)}</dd>
        </div>
        <div>
          <dt>{t.debits}</dt>
          <dd class="money">{money(s.totalDebits)}</dd>
        </div>
        <div>
          <dt>{t.lineCount}</dt>
          <dd>{formatCount(s.lineCount, lang)}</dd>
        </div>
        <div>
          <dt>{t.reconciled}</dt>
          <dd class={s.reconciled ? 'ok' : 'warn'} data-reconciled={String(s.reconciled)}>
            {s.reconciled ? `✓ ${t.yes}` : `✗ ${t.reconciledNo}`}
          </dd>
        </div>
        <div class="digest">
          <dt>{t.digest}</dt>
          <dd>
            <code>{s.digest}</code>
            <span class="hint">{t.digestHint}</span>
          </dd>
        </div>
      </dl>
      <CsvButton path={`${base}&format=csv`} fallbackName={`statement-${account.accountNumber}-${s.from}-${s.to}.csv`} />
      <BalanceChart lines={lines} breaks={s.breaks} total={s.lineCount} />
      <LinesTable lines={lines} breaks={s.breaks} currency={s.currency} target={target} />
      {nextCursor && (
        <p>
          <button type="button" onClick={loadMore} disabled={more.busy}>
            {more.busy ? t.loading : t.loadMore(formatCount(s.lineCount - lines.length, lang))}
          </button>
        </p>
      )}
      {more.problem && <ProblemMessage problem={more.problem} />}
    </>
  );
}

function PeriodPicker({ accountId, period }: { accountId: string; period: Target }) {
  const { t } = useConsole();
  const month = periodMonth(period.from, period.to);
  const [mode, setMode] = useState<'month' | 'range'>(month ? 'month' : 'range');
  const [monthValue, setMonthValue] = useState(month ?? period.from.slice(0, 7));
  const [from, setFrom] = useState(period.from);
  const [to, setTo] = useState(period.to);
  const go = (p: Target) => (location.hash = statementHref(accountId, { from: p.from, to: p.to }));
  const submit = (event: Event) => {
    event.preventDefault();
    if (mode === 'month' && /^\d{4}-\d{2}$/.test(monthValue)) go(monthPeriod(monthValue));
    if (mode === 'range' && from && to) go({ from, to });
  };
  return (
    <form class="period" onSubmit={submit}>
      <fieldset>
        <legend>{t.period}</legend>
        <label>
          <input type="radio" name="period-mode" checked={mode === 'month'} onChange={() => setMode('month')} /> {t.periodMonth}
        </label>
        <label>
          <input type="radio" name="period-mode" checked={mode === 'range'} onChange={() => setMode('range')} /> {t.periodRange}
        </label>
      </fieldset>
      {mode === 'month' ? (
        <span class="period-fields">
          {month && (
            <button type="button" onClick={() => go(monthPeriod(shiftMonth(month, -1)))}>
              ‹ {t.previousMonth}
            </button>
          )}
          <label for="period-month">{t.month}</label>
          <input id="period-month" type="month" value={monthValue} required onInput={(e) => setMonthValue((e.target as HTMLInputElement).value)} />
          {month && (
            <button type="button" onClick={() => go(monthPeriod(shiftMonth(month, 1)))}>
              {t.nextMonth} ›
            </button>
          )}
        </span>
      ) : (
        <span class="period-fields">
          <label for="period-from">{t.from}</label>
          <input id="period-from" type="date" value={from} required onInput={(e) => setFrom((e.target as HTMLInputElement).value)} />
          <label for="period-to">{t.to}</label>
          <input id="period-to" type="date" value={to} min={from} required onInput={(e) => setTo((e.target as HTMLInputElement).value)} />
        </span>
      )}
      <button type="submit">{t.show}</button>
    </form>
  );
}

/** The API's own CSV, fetched with the key (a plain link cannot send it) and saved from a Blob. */
function CsvButton({ path, fallbackName }: { path: string; fallbackName: string }) {
  const { api, t } = useConsole();
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<ApiProblem | null>(null);
  const download = async () => {
    setBusy(true);
    setProblem(null);
    try {
      const { blob, filename } = await api.download(path);
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = filename ?? fallbackName;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (error) {
      setProblem(error instanceof ApiProblem ? error : new ApiProblem(0, String(error), undefined));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="actions">
      <button type="button" onClick={download} disabled={busy}>
        {busy ? t.downloading : t.downloadCsv}
      </button>
      {problem && <ProblemMessage problem={problem} />}
    </div>
  );
}

function LinesTable({
  lines,
  breaks,
  currency,
  target,
}: {
  lines: Line[];
  breaks: Break[];
  currency: string;
  target: { tx: string | null; breakId: string | null };
}) {
  const { t, lang, may } = useConsole();
  const [detail, setDetail] = useState<Line | null>(null);
  const auditor = may('listTransactionEvents') && may('getRawPayload');
  const index = new Map(lines.map((l, i) => [l.transactionId, i]));
  // Each open break goes between its two lines: after the line it follows, or before the first line when that one
  // lies before the period.
  const after = new Map<string, Break[]>();
  const beforeFirst: Break[] = [];
  const elsewhere: Break[] = [];
  for (const b of breaks) {
    if (index.has(b.afterTransactionId)) after.set(b.afterTransactionId, [...(after.get(b.afterTransactionId) ?? []), b]);
    else if (index.get(b.beforeTransactionId) === 0) beforeFirst.push(b);
    else elsewhere.push(b);
  }
  useEffect(() => {
    const selector = target.breakId
      ? `[data-break-id="${CSS.escape(target.breakId)}"]`
      : target.tx
        ? `[data-transaction-id="${CSS.escape(target.tx)}"]`
        : null;
    const row = selector ? document.querySelector<HTMLElement>(selector) : null;
    if (row) {
      row.scrollIntoView({ block: 'center' });
      row.focus({ preventScroll: true });
    }
  }, [target.tx, target.breakId, lines.length]);
  const columns = auditor ? 8 : 7;
  const breakRow = (b: Break) => (
    <tr key={`break-${b.id}`} class={`break-row${b.id === target.breakId ? ' target' : ''}`} data-break-id={b.id} tabIndex={-1}>
      <td colSpan={columns}>
        <div class="break-text">
          <strong>⚠ {t.breakBetween(formatMoney(b.missingAmount, lang, currency))}</strong>
          <span class="break-healing">
            {t.healing}: {healingText(b, t, lang)}
          </span>
          <span class="muted">
            {' '}
            · {t.opened} {formatDateTime(b.openedAt, lang)}
          </span>
        </div>
      </td>
    </tr>
  );
  if (lines.length === 0 && breaks.length === 0) return <p>{t.noLines}</p>;
  return (
    <>
      <TableRegion label={t.linesTable} tableClass="lines">
        <caption class="visually-hidden">{t.linesTable}</caption>
        <thead>
          <tr>
            <th scope="col">{t.dateTime}</th>
            <th scope="col">{t.description}</th>
            <th scope="col">{t.counterparty}</th>
            <th scope="col" class="num">
              {t.amount}
            </th>
            <th scope="col" class="num">
              {t.before}
            </th>
            <th scope="col" class="num">
              {t.after}
            </th>
            <th scope="col">{t.notes}</th>
            {auditor && (
              <th scope="col">
                <span class="visually-hidden">{t.eventAndPayload}</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {beforeFirst.map(breakRow)}
          {lines.map((l) => (
            <Fragment key={l.transactionId}>
              <tr
                class={`line${l.late ? ' late' : ''}${l.transactionId === target.tx ? ' target' : ''}`}
                data-transaction-id={l.transactionId}
                tabIndex={-1}
              >
                <td class="nowrap">{formatDateTime(l.transactionDateTime, lang)}</td>
                <td>
                  {l.description ?? ''}
                  {l.reference && <span class="muted small"> {l.reference}</span>}
                </td>
                <td>{[l.counterAccountName, l.counterAccountNumber, l.counterAccountBankName].filter(Boolean).join(' · ')}</td>
                <td class={`num money ${l.amount.startsWith('-') ? 'debit' : 'credit'}`}>{formatMoney(l.amount, lang, currency, { signed: true })}</td>
                <td class="num money">{formatMoney(l.balanceBefore, lang, currency)}</td>
                <td class="num money">{formatMoney(l.balanceAfter, lang, currency)}</td>
                <td>
                  {l.late && (
                    <span class="badge late-badge" title={t.lateTitle}>
                      {t.late}
                    </span>
                  )}
                </td>
                {auditor && (
                  <td>
                    <button type="button" class="small-button" onClick={() => setDetail(l)} aria-label={t.eventAndPayloadOf(l.transactionId)}>
                      {t.eventAndPayload}
                    </button>
                  </td>
                )}
              </tr>
              {(after.get(l.transactionId) ?? []).map(breakRow)}
            </Fragment>
          ))}
        </tbody>
      </TableRegion>
      {elsewhere.length > 0 && (
        <div class="breaks-elsewhere">
          <h3>{t.breakElsewhere}</h3>
          <ul>
            {elsewhere.map((b) => (
              <li key={b.id} data-break-id={b.id}>
                {t.breakBetween(formatMoney(b.missingAmount, lang, currency))}: {b.afterTransactionId} → {b.beforeTransactionId}
              </li>
            ))}
          </ul>
        </div>
      )}
      {detail && <LineDetail line={detail} currency={currency} onClose={() => setDetail(null)} />}
    </>
  );
}
