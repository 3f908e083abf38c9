import { sample } from './app';

/**
 * The "Done when" account: 0099887766, December 2023, as Cas delivers it. dec-03 (+1 200 000) is never
 * delivered, so the chain breaks between dec-02 and dec-04; dec-05 is delivered last, after the lines that follow it
 * (late); dec-01 comes once more with another description (a conflicting repeat). A second account of another bank
 * is there to be searched past.
 */
export const ACCOUNT_NUMBER = '0099887766';
export const FI_ID = '3c26a8ed-efb5-11ed-8620-0ae7e48c82d8';

export interface TxSpec {
  readonly id: string;
  readonly at: string;
  readonly amount: number;
  readonly runningBalance: number;
  readonly description: string;
  readonly extra: Record<string, unknown>;
}

const line = (id: string, at: string, amount: number, runningBalance: number, description: string, extra: Record<string, unknown> = {}): TxSpec => ({
  id,
  at,
  amount,
  runningBalance,
  description,
  extra,
});

export const TRANSACTIONS = {
  dec01: line('dec01000000000000000000000000001', '2023-12-01T09:00:00+07:00', 5_000_000, 20_000_000, 'Thu tiền hàng, HĐ 0112', {
    counterAccountName: 'CÔNG TY TNHH ÁNH DƯƠNG',
    counterAccountNumber: '0451000123456',
  }),
  dec02: line('dec02000000000000000000000000002', '2023-12-03T10:30:00+07:00', -2_500_000, 17_500_000, 'Chuyển tiền lương tháng 11'),
  dec03: line('dec03000000000000000000000000003', '2023-12-05T14:00:00+07:00', 1_200_000, 18_700_000, 'Hoàn tiền (never delivered)'),
  dec04: line('dec04000000000000000000000000004', '2023-12-08T11:15:00+07:00', -700_000, 18_000_000, 'Phí dịch vụ "SMS banking"'),
  dec05: line('dec05000000000000000000000000005', '2023-12-12T16:45:00+07:00', 3_000_000, 21_000_000, 'Thu tiền hàng, HĐ 0127'),
  dec06: line('dec06000000000000000000000000006', '2023-12-20T08:05:00+07:00', -1_000_000, 20_000_000, 'Thanh toán tiền điện'),
  dec07: line('dec07000000000000000000000000007', '2023-12-28T13:20:00+07:00', 250_000, 20_250_000, 'Lãi tiền gửi'),
};

export const OTHER_ACCOUNT_NUMBER = '1903555000111';

export function webhookBody(tx: TxSpec, overrides: Record<string, unknown> = {}): string {
  const body = JSON.parse(sample('transaction-webhook.json').toString('utf8'));
  const date = tx.at.slice(0, 10);
  return JSON.stringify({
    ...body,
    transaction: {
      ...body.transaction,
      id: tx.id,
      transactionDate: date,
      bookingDate: date,
      transactionDateTime: tx.at,
      amount: tx.amount,
      runningBalance: tx.runningBalance,
      description: tx.description,
      accountNumber: ACCOUNT_NUMBER,
      fiId: FI_ID,
      fiName: 'VietinBank',
      ...tx.extra,
      ...overrides,
    },
  });
}

/**
 * Delivers the month: everything but dec-03 and dec-05, waits until it is projected, then dec-05 (so that lines
 * already follow it: late), a conflicting repeat of dec-01, and one transaction of the other account.
 */
export async function deliverDecember2023(post: (body: string) => Promise<string>, projected: () => Promise<void>): Promise<void> {
  const { dec01, dec02, dec04, dec05, dec06, dec07 } = TRANSACTIONS;
  for (const tx of [dec01, dec02, dec04, dec06, dec07]) expectStatus(await post(webhookBody(tx)), 'accepted');
  await projected();
  expectStatus(await post(webhookBody(dec05)), 'accepted');
  expectStatus(await post(webhookBody(dec01, { description: 'Thu tiền hàng, HĐ 0112 (sửa)' })), 'conflict');
  expectStatus(
    await post(
      webhookBody(
        { id: 'other00000000000000000000000001', at: '2024-01-15T10:00:00+07:00', amount: 750_000, runningBalance: 1_750_000, description: 'Nộp tiền', extra: {} },
        { accountNumber: OTHER_ACCOUNT_NUMBER, fiId: 'b0a4c1f2-0000-4000-8000-000000000002', fiName: 'Vietcombank' },
      ),
    ),
    'accepted',
  );
  await projected();
}

function expectStatus(actual: string, expected: string): void {
  if (actual !== expected) throw new Error(`the webhook was answered ${actual}, not ${expected}`);
}
