import { Command, InvalidArgumentError } from 'commander';
import { appendTransactions } from './bank';
import { SIM_API_VERSION, fibonacciScheduleMs, startCasSimulator } from './server';

/**
 * `npm run cas-sim`: a local Cas BankHub for development. It prints the settings the service needs; with a webhook
 * URL it also makes new transactions happen on linked accounts and pushes them like Cas does.
 */

const integer = (name: string, min: number) => (value: string): number => {
  const parsed = Number.parseInt(value, 10);
  if (!/^-?\d+$/.test(value) || parsed < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
  return parsed;
};
const rate = (value: string): number => {
  const parsed = Number.parseFloat(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed > 1) throw new InvalidArgumentError('a rate is between 0 and 1');
  return parsed;
};

const program = new Command()
  .name('cas-sim')
  .description('A local Cas BankHub: REST calls, Cas Link and webhook delivery for generated accounts')
  .option('--port <port>', 'port to listen on (0 = any free port)', integer('port', 0), 4010)
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--seed <seed>', 'seed of every generated value', 'cas-sim')
  .option('--accounts <n>', 'number of accounts', integer('accounts', 1), 3)
  .option('--transactions <n>', 'history length per account', integer('transactions', 0), 20)
  .option('--client-id <id>', 'the x-client-id to accept', 'sim-client-id')
  .option('--secret-key <key>', 'the x-secret-key to accept', 'sim-secret-key')
  .option('--null-balance-rate <rate>', 'share of transactions sent with runningBalance null', rate, 0)
  .option('--rate-limit-ms <ms>', 'GET /transactions window per grant', integer('rate-limit-ms', 0), 60_000)
  .option('--webhook-url <url>', 'where to POST transaction webhooks (include your secret path)')
  .option('--interval-ms <ms>', 'how often new transactions happen', integer('interval-ms', 100), 5_000)
  .option('--per-tick <n>', 'new transactions per linked account per tick', integer('per-tick', 0), 1)
  .option('--all-accounts', 'push webhooks for unlinked accounts too (grantId null)', false)
  .option('--drop-rate <rate>', 'share of webhooks never delivered', rate, 0)
  .option('--duplicate-rate <rate>', 'share of webhooks delivered twice', rate, 0)
  .option('--reorder-rate <rate>', 'share of webhooks delivered late', rate, 0)
  .option('--reorder-window <n>', 'how many places late', integer('reorder-window', 0), 5)
  .option('--retry-unit-ms <ms>', 'Fibonacci retry unit (Cas: a minute)', integer('retry-unit-ms', 1), 1000);

program.parse();
const opts = program.opts<{
  port: number;
  host: string;
  seed: string;
  accounts: number;
  transactions: number;
  clientId: string;
  secretKey: string;
  nullBalanceRate: number;
  rateLimitMs: number;
  webhookUrl?: string;
  intervalMs: number;
  perTick: number;
  allAccounts: boolean;
  dropRate: number;
  duplicateRate: number;
  reorderRate: number;
  reorderWindow: number;
  retryUnitMs: number;
}>();

const sim = await startCasSimulator({
  port: opts.port,
  host: opts.host,
  clientId: opts.clientId,
  secretKey: opts.secretKey,
  seed: opts.seed,
  accounts: opts.accounts,
  transactionsPerAccount: opts.transactions,
  bankOptions: { nullRunningBalanceRate: opts.nullBalanceRate },
  rateLimitWindowMs: opts.rateLimitMs,
  webhooks: {
    ...(opts.webhookUrl === undefined ? {} : { targetUrl: opts.webhookUrl }),
    dropRate: opts.dropRate,
    duplicateRate: opts.duplicateRate,
    reorderRate: opts.reorderRate,
    reorderWindow: opts.reorderWindow,
    retryScheduleMs: fibonacciScheduleMs(17, opts.retryUnitMs),
    timeoutMs: 30_000,
  },
});

const lines = [
  `Cas simulator listening on ${sim.url}`,
  '',
  'Service settings:',
  `  BANKHUB_BASE_URL=${sim.url}`,
  `  BANKHUB_CLIENT_ID=${opts.clientId}`,
  `  BANKHUB_SECRET_KEY=${opts.secretKey}`,
  `  BANKHUB_API_VERSION=${SIM_API_VERSION}`,
  `  Cas Link: ${sim.url}/link?grantToken=<grantToken>&redirectUri=<redirectUri>`,
  '',
  'Accounts:',
  ...sim.bank.accounts.map(
    (a) => `  ${a.fiName.padEnd(12)} ${a.accountNumber.padEnd(14)} ${a.accountName} (${a.transactions.length} txs)`,
  ),
];
console.log(lines.join('\n'));

let timer: NodeJS.Timeout | undefined;
let ticking = false;
if (opts.webhookUrl !== undefined) {
  console.log(`\nPushing webhooks to ${redactUrl(opts.webhookUrl)} every ${opts.intervalMs} ms`);
  timer = setInterval(() => {
    // A slow target must not stack up deliveries: one tick at a time.
    if (ticking) return;
    ticking = true;
    void tick().finally(() => {
      ticking = false;
    });
  }, opts.intervalMs);
}

async function tick(): Promise<void> {
  const linked = new Set([...sim.grants.values()].filter((g) => g.status === 'active').flatMap((g) => g.accountKeys));
  const accounts = opts.allAccounts
    ? sim.bank.accounts
    : sim.bank.accounts.filter((a) => linked.has(`${a.fiId}:${a.accountNumber}`));
  if (accounts.length === 0) return;
  for (const account of accounts) appendTransactions(account, opts.perTick, new Date());
  try {
    const report = await sim.deliverWebhooks({ accounts });
    const [sent, lost, twice, failed] = [report.delivered, report.dropped, report.duplicated, report.gaveUp];
    console.log(`delivered ${sent.length}, dropped ${lost.length}, duplicated ${twice.length}, gave up ${failed.length}`);
  } catch (error) {
    console.error('delivery failed:', error instanceof Error ? error.message : error);
  }
}

/** The webhook URL carries the service's secret path: show only where it points. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}/…`;
  } catch {
    return '(invalid URL)';
  }
}

const shutdown = async (): Promise<void> => {
  if (timer) clearInterval(timer);
  await sim.close();
  process.exit(0);
};
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
