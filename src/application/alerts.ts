import { BANK_UTC_OFFSET_MINUTES } from '../domain/bank-day';
import type { GrantSweep, RecoveredTransaction } from '../domain/events';

/**
 * Alerts: what an operator must hear about without asking. Each is one JSON POST to ALERT_WEBHOOK_URL whose `text`
 * reads on its own (a Slack or Google Chat incoming webhook shows just that), and whose `alertId` is derived from
 * what it is about, so that the outbox (ports/alert-outbox.ts) records and sends it once, whatever replays.
 */
export const ALERT_KINDS = [
  'break_opened',
  'break_resolved',
  'projection_stalled',
  'event_parked',
  'conflict',
  'grant_needs_login',
  'sweep_recovered',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface AlertAccount {
  readonly id: string;
  readonly fiId: string;
  readonly fiName: string | null;
  readonly accountNumber: string;
}

/** The body POSTed to ALERT_WEBHOOK_URL. Money is a decimal string; instants ISO-8601 UTC. */
export interface Alert {
  readonly alertId: string;
  readonly kind: AlertKind;
  readonly text: string;
  /** When the thing alerted about happened (a break opened, a conflicting repeat arrived…). */
  readonly occurredAt: string;
  readonly account?: AlertAccount;
  readonly projection?: string;
  readonly break?: {
    readonly breakId: string;
    readonly afterTransactionId: string;
    readonly beforeTransactionId: string;
    readonly missingAmount: string;
    readonly openedAt: string;
    readonly resolvedAt?: string | null;
    readonly resolution?: string | null;
    readonly healAttempts: number;
    readonly lastHealOutcome: string | null;
  };
  readonly lag?: { readonly eventsBehind: string | null; readonly secondsBehind: number; readonly lastError: string | null };
  readonly parked?: { readonly eventId: string; readonly type: string; readonly position: string; readonly error: string; readonly tries: number };
  readonly conflict?: { readonly transactionId: string; readonly eventId: string; readonly originalEventId: string | null };
  readonly grant?: {
    readonly grantId: string;
    readonly fiId: string | null;
    readonly status: string;
    readonly errorCode: string | null;
    readonly errorMessage: string | null;
    readonly accountNumbers: readonly string[];
  };
  readonly sweep?: {
    readonly date: string;
    readonly fromDate: string;
    readonly toDate: string;
    readonly totals: Readonly<Record<string, number>>;
    readonly grants: readonly GrantSweep[];
    readonly recovered: readonly RecoveredTransaction[];
  };
}

// ---- texts -------------------------------------------------------------------------------------------------------

/** 1500000n → "1,500,000 VND"; the sign is kept. Exact: never through a double. */
export function formatVnd(amount: bigint | string): string {
  const text = amount.toString();
  const negative = text.startsWith('-');
  const digits = negative ? text.slice(1) : text;
  return `${negative ? '−' : ''}${digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',')} VND`;
}

/** An instant as the bank's people read it: "2026-05-02 10:15 (UTC+7)". */
export function bankTime(iso: string): string {
  const local = new Date(Date.parse(iso) + BANK_UTC_OFFSET_MINUTES * 60_000).toISOString();
  return `${local.slice(0, 10)} ${local.slice(11, 16)} (UTC+7)`;
}

/** 930 → "15 min 30 s", 7_500 → "2 h 5 min", 200_000 → "2 d 7 h". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3_600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  if (s < 86_400) return `${Math.floor(s / 3_600)} h${Math.floor((s % 3_600) / 60) ? ` ${Math.floor((s % 3_600) / 60)} min` : ''}`;
  return `${Math.floor(s / 86_400)} d${Math.floor((s % 86_400) / 3_600) ? ` ${Math.floor((s % 86_400) / 3_600)} h` : ''}`;
}

const accountLabel = (a: AlertAccount | undefined, fallback = 'an unknown account'): string =>
  a ? `${a.fiName ? `${a.fiName} (${a.fiId})` : a.fiId} account ${a.accountNumber}` : fallback;

export interface BreakFacts {
  readonly breakId: string;
  readonly account: AlertAccount;
  readonly afterTransactionId: string;
  readonly beforeTransactionId: string;
  readonly missingAmount: string;
  readonly openedAt: string;
  readonly resolvedAt: string | null;
  readonly resolution: string | null;
  readonly resolvedBySource: string | null;
  readonly healAttempts: number;
  readonly lastHealOutcome: string | null;
  readonly lastHealDetail: string | null;
}

const breakOf = (b: BreakFacts) => ({
  breakId: b.breakId,
  afterTransactionId: b.afterTransactionId,
  beforeTransactionId: b.beforeTransactionId,
  missingAmount: b.missingAmount,
  openedAt: b.openedAt,
  resolvedAt: b.resolvedAt,
  resolution: b.resolution,
  healAttempts: b.healAttempts,
  lastHealOutcome: b.lastHealOutcome,
});

export function breakOpenedAlert(b: BreakFacts, now: Date): Alert {
  const openFor = (now.getTime() - Date.parse(b.openedAt)) / 1000;
  const healing =
    b.healAttempts === 0
      ? 'No heal attempt yet (Cas BankHub not configured, or the healer has not reached it).'
      : `The healer tried ${b.healAttempts} time${b.healAttempts === 1 ? '' : 's'} and could not close it (last: ${b.lastHealOutcome}${b.lastHealDetail ? `, ${b.lastHealDetail}` : ''}).`;
  return {
    alertId: `break_opened:${b.breakId}`,
    kind: 'break_opened',
    occurredAt: b.openedAt,
    account: b.account,
    break: breakOf(b),
    text:
      `Break in the books of ${accountLabel(b.account)}: the bank's running balance moves by ${formatVnd(b.missingAmount)} ` +
      `between transactions ${b.afterTransactionId} and ${b.beforeTransactionId} that no delivered transaction explains. ` +
      `Open since ${bankTime(b.openedAt)}, ${duration(openFor)} ago. ${healing} ` +
      `Statements of this account are not reconciled until it closes (account id ${b.account.id}, break ${b.breakId}).`,
  };
}

export function breakResolvedAlert(b: BreakFacts): Alert {
  const resolvedAt = b.resolvedAt ?? b.openedAt;
  const how = [b.resolution, b.resolvedBySource ? `by a ${b.resolvedBySource} delivery` : null].filter(Boolean).join(', ');
  return {
    alertId: `break_resolved:${b.breakId}`,
    kind: 'break_resolved',
    occurredAt: resolvedAt,
    account: b.account,
    break: breakOf(b),
    text:
      `Break resolved in the books of ${accountLabel(b.account)}: the ${formatVnd(b.missingAmount)} gap between transactions ` +
      `${b.afterTransactionId} and ${b.beforeTransactionId} closed at ${bankTime(resolvedAt)}${how ? ` (${how})` : ''}, ` +
      `after ${duration((Date.parse(resolvedAt) - Date.parse(b.openedAt)) / 1000)} open (break ${b.breakId}).`,
  };
}

export interface StallFacts {
  readonly projection: string;
  readonly eventsBehind: bigint | null;
  readonly secondsBehind: number;
  readonly lastError: string | null;
  /** The committed checkpoint when the stall was noticed: a stall is one alert until the projection catches up. */
  readonly position: string | null;
  readonly thresholdSeconds: number;
}

export function projectionStalledAlert(s: StallFacts, now: Date): Alert {
  const waiting = s.eventsBehind === null ? 'Events wait' : `${s.eventsBehind.toLocaleString('en')} event${s.eventsBehind === 1n ? ' waits' : 's wait'}`;
  return {
    alertId: `projection_stalled:${s.projection}:${s.position ?? 'start'}`,
    kind: 'projection_stalled',
    occurredAt: new Date(now.getTime() - s.secondsBehind * 1000).toISOString(),
    projection: s.projection,
    lag: { eventsBehind: s.eventsBehind === null ? null : s.eventsBehind.toString(), secondsBehind: s.secondsBehind, lastError: s.lastError },
    text:
      `Projection ${s.projection} is stalled: ${waiting} to be applied, the oldest for ${duration(s.secondsBehind)} ` +
      `(alert threshold ${duration(s.thresholdSeconds)}).${s.lastError ? ` Last error: ${s.lastError}.` : ''} ` +
      `Balances, statements and breaks are stale until it catches up: is a projector (\`ledger project\`, or the service with RUN_PROJECTIONS=true) running?`,
  };
}

export interface ParkedFacts {
  readonly projection: string;
  readonly eventId: string;
  readonly type: string;
  readonly position: string;
  readonly error: string;
  readonly tries: number;
  readonly firstFailedAt: string;
  readonly transactionDate: string | null;
  readonly account: AlertAccount | undefined;
  readonly grantId: string | null;
}

export function eventParkedAlert(p: ParkedFacts): Alert {
  const concerns = p.account
    ? ` of ${accountLabel(p.account)}${p.transactionDate ? `, dated ${p.transactionDate}` : ''}`
    : p.grantId
      ? ` of grant ${p.grantId}`
      : '';
  const effect =
    p.projection === 'ledger' && p.type === 'BalanceChanged'
      ? " The account's statements are not reconciled from that date on."
      : '';
  return {
    alertId: `event_parked:${p.projection}:${p.eventId}`,
    kind: 'event_parked',
    occurredAt: p.firstFailedAt,
    projection: p.projection,
    ...(p.account ? { account: p.account } : {}),
    parked: { eventId: p.eventId, type: p.type, position: p.position, error: p.error, tries: p.tries },
    text:
      `Projection ${p.projection} set aside (parked) event ${p.type} ${p.eventId}${concerns}: it could not be applied after ` +
      `${p.tries} tr${p.tries === 1 ? 'y' : 'ies'}: ${p.error}.${effect} After the fix: \`ledger parked retry ${p.eventId}\` ` +
      `(or POST /parked/${p.projection}/${p.eventId}/retry).`,
  };
}

export interface ConflictFacts {
  readonly anomalyId: string;
  readonly account: AlertAccount | undefined;
  readonly transactionId: string;
  readonly eventId: string;
  readonly receivedAt: string;
  readonly source: string;
  readonly details: Readonly<Record<string, string | null>>;
}

export function conflictAlert(c: ConflictFacts): Alert {
  const amount = c.details.amount ? ` (the repeat says amount ${formatVnd(c.details.amount)}${c.details.runningBalance ? `, running balance ${formatVnd(c.details.runningBalance)}` : ''})` : '';
  return {
    alertId: `conflict:${c.anomalyId}`,
    kind: 'conflict',
    occurredAt: c.receivedAt,
    ...(c.account ? { account: c.account } : {}),
    conflict: { transactionId: c.transactionId, eventId: c.eventId, originalEventId: c.details.originalEventId ?? null },
    text:
      `Conflicting repeat: a ${c.source} delivery of transaction ${c.transactionId} of ${accountLabel(c.account)} at ` +
      `${bankTime(c.receivedAt)} differs from the version already booked${amount}. The first version stays in the books; ` +
      `compare both in GET /audit/transactions/${c.transactionId}/events and ask Cas which is right.`,
  };
}

export interface GrantFacts {
  readonly grantId: string;
  readonly fiId: string | null;
  readonly status: 'login_required' | 'error';
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly accountNumbers: readonly string[];
  readonly updatedAt: string;
  /** The log position of the grant's row when it moved to this status: one alert per move. */
  readonly position: string;
}

export function grantNeedsLoginAlert(g: GrantFacts): Alert {
  const why = [g.errorCode, g.errorMessage].filter(Boolean).join(': ');
  const accounts = g.accountNumbers.length > 0 ? ` (accounts ${g.accountNumbers.join(', ')})` : '';
  const action =
    g.status === 'login_required'
      ? 'The customer must log in to the bank again through Cas Link (POST /links).'
      : 'Cas reports an error on the grant; check it in the Cas console.';
  return {
    alertId: `grant_needs_login:${g.grantId}:${g.position}`,
    kind: 'grant_needs_login',
    occurredAt: g.updatedAt,
    grant: { grantId: g.grantId, fiId: g.fiId, status: g.status, errorCode: g.errorCode, errorMessage: g.errorMessage, accountNumbers: g.accountNumbers },
    text:
      `Cas grant ${g.grantId}${g.fiId ? ` at ${g.fiId}` : ''}${accounts} moved to ${g.status}${why ? ` (${why})` : ''} at ` +
      `${bankTime(g.updatedAt)}. ${action} Until then backfill, healing and the daily sweep cannot reach its accounts.`,
  };
}

export interface SweepFacts {
  readonly date: string;
  readonly fromDate: string;
  readonly toDate: string;
  readonly completedAt: string;
  readonly totals: { readonly fetched: number; readonly accepted: number; readonly duplicates: number; readonly conflicts: number; readonly invalid: number };
  readonly grants: readonly GrantSweep[];
  readonly recovered: readonly RecoveredTransaction[];
  readonly fiNames: ReadonlyMap<string, string>;
}

export function sweepRecoveredAlert(s: SweepFacts): Alert {
  const perAccount = new Map<string, number>();
  for (const r of s.recovered) {
    const label = `${s.fiNames.get(r.fiId) ? `${s.fiNames.get(r.fiId)} (${r.fiId})` : r.fiId} account ${r.accountNumber}`;
    perAccount.set(label, (perAccount.get(label) ?? 0) + 1);
  }
  const where = [...perAccount].map(([label, n]) => `${label}: ${n}`).join('; ');
  const n = s.totals.accepted;
  return {
    alertId: `sweep_recovered:${s.date}`,
    kind: 'sweep_recovered',
    occurredAt: s.completedAt,
    sweep: { date: s.date, fromDate: s.fromDate, toDate: s.toDate, totals: s.totals, grants: s.grants, recovered: s.recovered },
    text:
      `The daily sweep of ${s.date} recovered ${n} transaction${n === 1 ? '' : 's'} that Cas's webhooks never delivered ` +
      `(${s.fromDate} to ${s.toDate}${where ? `; ${where}` : ''}): Cas's push channel lost ${n === 1 ? 'it' : 'them'}, and ` +
      `${n === 1 ? 'it is' : 'they are'} booked now with source backfill. Fetched ${s.totals.fetched}, already booked ` +
      `${s.totals.duplicates}, conflicts ${s.totals.conflicts}, invalid ${s.totals.invalid}.`,
  };
}
