import type { BankTransaction, JsonObject } from './bank-transaction';
import { transactionToJson } from './bank-transaction';
import type { Currency } from './money';
import { assertNever } from './result';
import type { LedgerEvent } from './events';

/**
 * Domain events ↔ the JSON the event store keeps. Money is written as decimal strings (JSON numbers are
 * doubles) and read back as bigint. Both event-store adapters store exactly this JSON.
 */
export function encodeEvent(event: LedgerEvent): { type: LedgerEvent['type']; data: JsonObject } {
  switch (event.type) {
    case 'BalanceChanged':
    case 'ConflictingDuplicateReceived':
      return { type: event.type, data: { ...event.data, transaction: transactionToJson(event.data.transaction) } };
    case 'GrantWebhookReceived':
      return { type: event.type, data: { ...event.data, error: event.data.error ? { ...event.data.error } : null } };
    case 'WebhookReceived':
    case 'GapHealAttempted':
      return { type: event.type, data: { ...event.data } };
    case 'GrantLinked':
      return { type: event.type, data: { ...event.data, accounts: event.data.accounts.map((a) => ({ ...a })) } };
    case 'SweepCompleted':
      return {
        type: event.type,
        data: {
          ...event.data,
          grants: event.data.grants.map((g) => ({ ...g })),
          totals: { ...event.data.totals },
          recovered: event.data.recovered.map((r) => ({ ...r })),
        },
      };
    default:
      return assertNever(event);
  }
}

/** Decodes an event of the ledger's own types; returns null for a type this version does not know. */
export function decodeEvent(type: string, data: JsonObject): LedgerEvent | null {
  switch (type) {
    case 'BalanceChanged':
      return { type, data: transactionEventData(data) };
    case 'ConflictingDuplicateReceived':
      return { type, data: { ...transactionEventData(data), originalEventId: data.originalEventId as string } };
    case 'GrantWebhookReceived':
    case 'WebhookReceived':
    case 'GapHealAttempted':
    case 'GrantLinked':
    case 'SweepCompleted':
      return { type, data } as unknown as LedgerEvent;
    default:
      return null;
  }
}

function transactionEventData(data: JsonObject) {
  return {
    transaction: decodeTransaction(data.transaction as JsonObject),
    source: data.source as 'webhook' | 'backfill',
    grantId: (data.grantId as string | null) ?? null,
  };
}

export function decodeTransaction(json: JsonObject): BankTransaction {
  return {
    ...(json as unknown as Omit<BankTransaction, 'amount' | 'runningBalance'>),
    amount: moneyFromJson(json.amount),
    runningBalance: optionalMoneyFromJson(json.runningBalance),
    currency: json.currency as Currency,
  };
}

/** Money as encodeEvent writes it (a decimal string), as bigint. */
export const moneyFromJson = (value: unknown): bigint => BigInt(value as string);
/** The same for money that may be missing (a running balance): null then. */
export const optionalMoneyFromJson = (value: unknown): bigint | null =>
  value === null || value === undefined ? null : moneyFromJson(value);
