import { randomBytes } from 'node:crypto';
import { sql, type Kysely, type RawBuilder } from 'kysely';

const FI = '3c26a8ed-efb5-11ed-8620-0ae7e48c82d8';
const DESCRIPTIONS = ['Chuyển tiền mua hàng', 'Thanh toán hoá đơn điện', 'Nhận lương tháng', 'Rút tiền ATM', 'Phí dịch vụ SMS'];

/**
 * Distinct, realistic TRANSACTIONS webhooks: each account's running balance chains, ids are fresh 32-hex strings,
 * bodies are the shape of the sample Cas payload (about 1 KB).
 */
export function webhookBodies(accounts: number) {
  const balances = Array.from({ length: accounts }, (_, i) => 1_000_000_000n + BigInt(i) * 1000n);
  const prefix = randomBytes(6).toString('hex');
  let n = 0;
  let minute = Date.parse('2026-06-01T08:00:00+07:00');
  return (): string => {
    n += 1;
    const account = n % accounts;
    const amount = BigInt(((n * 7919) % 2_000_000) - 999_000) * 10n;
    balances[account]! += amount;
    if (n % 50 === 0) minute += 60_000;
    const when = new Date(minute + 7 * 3_600_000).toISOString().replace('.000Z', '+07:00');
    return `{"environment":"dev","webhookType":"TRANSACTIONS","webhookCode":"DEFAULT_UPDATE","error":null,"grantId":"4c657924-13f3-11ee-a4bb-42010a40001b","transaction":{"id":"${prefix}${n.toString(16).padStart(20, '0')}","transactionCode":"FT${n}","reference":null,"transactionDate":"${when.slice(0, 10)}","transactionDateTime":"${when}","bookingDate":"${when.slice(0, 10)}","amount":${amount},"description":"${DESCRIPTIONS[n % DESCRIPTIONS.length]} ${n}","runningBalance":${balances[account]},"accountNumber":"${String(10_000_000 + account).padStart(12, '0')}","virtualAccountNumber":null,"virtualAccountName":null,"paymentChannel":"Napas247","counterAccountNumber":"0123456789","counterAccountName":"NGUYEN VAN A","counterAccountBankId":"970436","counterAccountBankName":"Vietcombank","paymentMeta":null,"fiId":"${FI}","fiName":"VietinBank","fiServiceId":"433f71c4-efb5-11ed-8620-0ae7e48c82d8","fiServiceName":"VietinBank iPay - Official API","currency":"VND"}}`;
  };
}

/**
 * json_build_object writes `"key" : value, "next"`; the service stores JSON.stringify's compact text (~10 % shorter
 * for these events). No seeded value holds `" : ` or `, "`, so the two replacements touch only the separators.
 */
const compact = (json: RawBuilder<unknown>) => sql`replace(replace((${json})::text, '" : ', '":'), ', "', ',"')::json`;

/**
 * Writes `count` BalanceChanged events over `accounts` accounts straight into the event table (as the webhook path
 * would have stored them, each with a raw body of 900 bytes in event_attachments), a year of history with chained
 * running balances. Account numbers are firstAccount … firstAccount + accounts − 1, zero-padded to 12 digits.
 */
export async function seedEvents(db: Kysely<any>, count: number, accounts: number, label: string, firstAccount = 0): Promise<void> {
  const perAccount = Math.ceil(count / accounts);
  // One statement: the running balance is a window over each account's whole history.
  {
    await sql`
      with inserted as (
      insert into events (stream_id, revision, event_id, type, data, metadata)
      select 'bankTx-' || tx_id, 0, overlay(overlay(md5(tx_id) placing '5' from 13) placing '8' from 17)::uuid, 'BalanceChanged',
        ${compact(sql`json_build_object('source', 'webhook', 'grantId', null, 'transaction', json_build_object(
          'id', tx_id, 'transactionCode', null, 'reference', null,
          'transactionDate', to_char(at_local, 'YYYY-MM-DD'), 'transactionDateTime', to_char(at_local, 'YYYY-MM-DD"T"HH24:MI:00+07:00'),
          'bookingDate', to_char(at_local, 'YYYY-MM-DD'), 'amount', amount::text, 'description', 'Chuyển tiền ' || n,
          'runningBalance', (1000000000 + running)::text, 'accountNumber', lpad((acct + ${firstAccount}::bigint)::text, 12, '0'),
          'virtualAccountNumber', null, 'virtualAccountName', null, 'paymentChannel', 'Napas247',
          'counterAccountNumber', '0123456789', 'counterAccountName', 'NGUYEN VAN A', 'counterAccountBankId', '970436',
          'counterAccountBankName', 'Vietcombank', 'paymentMeta', null, 'fiId', ${FI}::text, 'fiName', 'VietinBank',
          'fiServiceId', null, 'fiServiceName', null, 'currency', 'VND'))`)},
        ${compact(sql`json_build_object('rawSha256', md5(tx_id), 'contentSha256', md5(tx_id),
          'receivedAt', to_char(at_local, 'YYYY-MM-DD"T"HH24:MI:05Z'), 'source', 'webhook', 'requestId', null)`)}
      from (
        select n, acct, amount, tx_id, at_local,
          sum(amount) over (partition by acct order by k) as running
        from (
          select n, n % ${accounts}::bigint as acct, n / ${accounts}::bigint as k,
            ((n * 7919) % 2000000 - 999000) * 10 as amount,
            ${label}::text || lpad(to_hex(n), 20, '0') as tx_id,
            timestamp '2025-01-01 08:00' + (n / ${accounts}::bigint) * (interval '365 days' / ${perAccount}::int) as at_local
          from generate_series(0::bigint, ${count - 1}::bigint) n
        ) g
      ) r
      order by n
      returning seq)
      insert into event_attachments (seq, body) select seq, repeat('x', 900) from inserted`.execute(db);
  }
}
