import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pino from 'pino';
import { recordTransaction } from '../../src/application/ingest-webhook';
import type { EventStore } from '../../src/application/ports/event-store';
import { openRoot, type Overrides, type Root } from '../../src/composition-root';
import { loadConfig } from '../../src/config';
import type { BankTransaction } from '../../src/domain/bank-transaction';
import { transactionStreamId } from '../../src/domain/events';
import type { Database } from '../../src/infrastructure/postgres/database';
import type { ProjectionRunner } from '../../src/infrastructure/projection-runner';
import { projectFromLog } from '../../src/infrastructure/read-model-maintenance';
import { accountIdOf, createLedgerProjection } from '../../src/projections/ledger.projection';
import type { Projection } from '../../src/projections/projection';
import { createTestDatabase, type TestDatabase } from './postgres';

export interface GraphOptions {
  /** Environment variables beside DATABASE_URL (PROJECTION_BATCH_SIZE…). */
  readonly env?: Record<string, string>;
  /** Registrations of the composition root to replace; the ledger is the only projection unless these say otherwise. */
  readonly overrides?: Overrides;
}

export interface LedgerContext {
  /** The graph the composition root built over the test database: the ledger as the only projection. */
  readonly root: Root;
  readonly database: Database;
  readonly store: EventStore;
  readonly projection: Projection;
  readonly testDb: TestDatabase;
  /** Another process's graph over the same database (pools of its own), closed with the context. */
  another(options?: GraphOptions): Promise<Root>;
  /** Books a transaction as a webhook would (duplicates and conflicts decided by the store). */
  deliver(tx: BankTransaction, receivedAt?: Date, source?: 'webhook' | 'backfill'): Promise<string>;
  /** Projects everything not yet projected into the live schema, in batches of `batchSize`. */
  project(batchSize?: number): Promise<void>;
  close(): Promise<void>;
}

export async function createLedgerContext(label: string, options: GraphOptions = {}): Promise<LedgerContext> {
  const testDb = await createTestDatabase(label);
  const graphs: Root[] = [];
  const open = async ({ env = {}, overrides = {} }: GraphOptions = {}) => {
    const config = loadConfig({ DATABASE_URL: testDb.url, DB_POOL_SIZE: '10', LOG_LEVEL: 'silent', ...env });
    const root = await openRoot(config, { overrides: { logger: pino({ level: 'silent' }), projections: [createLedgerProjection()], ...overrides } });
    graphs.push(root);
    return root;
  };
  const root = await open(options);
  const database = root.resolve('database');
  const store = root.resolve('eventStore');
  const projection = root.resolve('projections').find((p) => p.name === 'ledger') ?? createLedgerProjection();
  let clock = Date.parse('2026-01-01T00:00:00Z');
  return {
    root,
    database,
    store,
    projection,
    testDb,
    another: open,
    async deliver(tx, receivedAt, source = 'webhook') {
      clock += 1000;
      const result = await recordTransaction(store, {
        transaction: tx,
        source,
        grantId: 'grant-1',
        metadata: { receivedAt: (receivedAt ?? new Date(clock)).toISOString(), source },
        attachment: '{}',
      });
      return result.status;
    },
    async project(batchSize = 500) {
      await projectFromLog({ db: database.db, eventStore: store, projection, schema: 'ledger', batchSize });
    },
    async close() {
      for (const graph of graphs.reverse()) await graph.close();
      await testDb.drop();
    },
  };
}

/** The ledger's runner of a graph. */
export const ledgerRunnerOf = (root: Root): ProjectionRunner =>
  root.resolve('runners')[root.resolve('projections').findIndex((p) => p.name === 'ledger')]!;

/**
 * A BalanceChanged appended straight through the event-store port, as an older version of the service or an
 * EventStoreDB client could have stored it: nothing checks that its figures fit the read model (10^30 đồng, year 0000).
 */
export async function appendStoredTransaction(store: EventStore, tx: BankTransaction, receivedAt = new Date()): Promise<string> {
  const eventId = randomUUID();
  const transaction = { ...tx, amount: tx.amount.toString(), runningBalance: tx.runningBalance === null ? null : tx.runningBalance.toString() };
  await store.appendToStream(
    transactionStreamId(tx.id),
    [{ eventId, type: 'BalanceChanged', data: { transaction, source: 'webhook', grantId: null }, metadata: { receivedAt: receivedAt.toISOString(), source: 'webhook' } }],
    'no_stream',
  );
  return eventId;
}

let counter = 0;
/** A transaction of the sample's shape; the running balance decides where it sits in the chain. */
export function bankTx(partial: Partial<BankTransaction> & { amount: bigint; runningBalance: bigint | null }): BankTransaction {
  counter += 1;
  const instant = partial.transactionDateTime ?? new Date(Date.parse('2026-03-01T09:00:00+07:00') + counter * 60_000).toISOString();
  return {
    id: `tx${counter.toString().padStart(10, '0')}${Math.random().toString(16).slice(2, 10)}`,
    transactionCode: null,
    reference: null,
    transactionDate: '2026-03-01',
    transactionDateTime: instant,
    bookingDate: '2026-03-01',
    description: 'Chuyển tiền',
    accountNumber: '0123456789',
    virtualAccountNumber: null,
    virtualAccountName: null,
    paymentChannel: null,
    counterAccountNumber: null,
    counterAccountName: null,
    counterAccountBankId: null,
    counterAccountBankName: null,
    paymentMeta: null,
    fiId: 'fi-vietinbank',
    fiName: 'VietinBank',
    fiServiceId: null,
    fiServiceName: null,
    currency: 'VND',
    ...partial,
  };
}

export async function linesOf(ctx: LedgerContext, fiId: string, accountNumber: string) {
  const { rows } = await sql<{ transaction_id: string; balance_before: string | null; balance_after: string | null; late: boolean }>`
    select transaction_id, balance_before, balance_after, late from ledger.statement_lines
    where account_id = ${accountIdOf(fiId, accountNumber)} order by instant, group_seq`.execute(ctx.database.db);
  return rows;
}

export async function breaksOf(ctx: LedgerContext, fiId: string, accountNumber: string) {
  const { rows } = await sql<{
    after_transaction_id: string;
    before_transaction_id: string;
    missing_amount: string;
    status: string;
    resolution: string | null;
    resolved_by_event_id: string | null;
  }>`select * from ledger.breaks where account_id = ${accountIdOf(fiId, accountNumber)} order by opened_at, after_transaction_id`.execute(
    ctx.database.db,
  );
  return rows;
}

export async function accountOf(ctx: LedgerContext, fiId: string, accountNumber: string) {
  const { rows } = await sql<{ balance: string | null; open_breaks: number; late_deliveries: number; line_count: string }>`
    select * from ledger.accounts where account_id = ${accountIdOf(fiId, accountNumber)}`.execute(ctx.database.db);
  return rows[0];
}

/**
 * A stray line under another account that holds `transactionId` (a hand edit, a restore gone wrong): the primary key
 * then refuses the transaction's own line, so its event is parked. Returns a function that removes it again.
 */
export async function insertStrayLine(ctx: LedgerContext, transactionId: string, transactionDate: string): Promise<() => Promise<void>> {
  const owner = randomUUID();
  await sql`
    insert into ledger.statement_lines (transaction_id, account_id, event_id, instant, group_seq, transaction_date,
      transaction_date_time, amount, late, received_at, source, log_position)
    values (${transactionId}, ${owner}, ${randomUUID()}, now(), 0, ${transactionDate}, 'x', 1, false, now(), 'webhook',
      '0000000000000000-0000000000000000')`.execute(ctx.database.db);
  return async () => {
    await sql`delete from ledger.statement_lines where transaction_id = ${transactionId} and account_id = ${owner}`.execute(ctx.database.db);
  };
}
