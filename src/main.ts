import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildService, openRoot, type Root } from './composition-root';
import { type Config, ConfigError, loadConfig } from './config';
import { exposureRefusal, isLoopbackHost } from './infrastructure/exposure';
import { exitGracefullyOnSignals } from './infrastructure/shutdown';

/** `npm start`: the service, built by the composition root, listening until SIGTERM drains it. */
async function main(): Promise<void> {
  const config = configOrExit();
  // The projection runners' own thread (a PostgreSQL server only): the module beside this one, source or built.
  const projectionThread = new URL(`./projection-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  const root = await openRoot(config, { waitForStores: true, projectionThread });
  const logger = root.resolve('logger');
  logger.info(
    {
      database: root.resolve('database').kind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL (DATABASE_URL)',
      eventStore: config.eventStoreUrl ? 'EventStoreDB' : 'PostgreSQL',
    },
    'stores open',
  );
  await refuseOrWarnAboutAccess(root, config);
  if (root.resolve('healLoop')) {
    const sweep = config.sweepAtMinutes === null ? 'off (SWEEP_AT=off)' : 'on';
    logger.info(
      { healAfterSeconds: config.healAfterSeconds, baseUrl: config.bankHub.baseUrl, sweepAtMinutes: config.sweepAtMinutes },
      `Cas BankHub configured: linking on, gap healing on, daily sweep ${sweep}`,
    );
  } else {
    logger.warn(
      { missing: config.bankHub.missing },
      `Cas BankHub is not configured (${config.bankHub.missing.join(', ')} unset): linking and backfill answer 503, gap healing is off`,
    );
  }

  if (!root.resolve('alertLoop')) logger.info('ALERT_WEBHOOK_URL is not set: alerting is off');

  const service = await buildService(root);
  exitGracefullyOnSignals({
    logger,
    delayMs: config.drain.delayMs,
    timeoutMs: config.drain.timeoutMs,
    onDrainStart: () => root.resolve('drain').begin(), // GET /ready answers 503 from now on; everything else is still served
    close: () => service.close(), // stops accepting, lets in-flight webhooks commit, stops the components, closes the stores
  });
  await service.app.listen({ port: config.port, host: config.host });
  service.start();
}

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}

/** Closed by default where it can be reached (exposure.ts); open where nothing is set up, with a warning saying so. */
async function refuseOrWarnAboutAccess(root: Root, config: Config): Promise<void> {
  const logger = root.resolve('logger');
  const keys = await root.resolve('apiKeys').count();
  const refusal = exposureRefusal({ ...config, liveKeys: keys.live });
  if (refusal) {
    logger.fatal(refusal);
    process.stderr.write(`${refusal}\n`);
    await root.close();
    process.exit(78); // EX_CONFIG
  }
  if (!isLoopbackHost(config.host) && config.allowInsecure && (!config.webhookToken || (!config.apiToken && keys.live === 0))) {
    logger.warn({ host: config.host }, 'ALLOW_INSECURE=true: listening where other machines can reach it without the secrets');
  }
  if (!config.webhookToken) {
    logger.warn('WEBHOOK_TOKEN is not set: POST /webhooks/bankhub accepts deliveries from anyone');
  }
  if (!config.apiToken && keys.total > 0 && keys.live === 0) {
    logger.warn('every API key is revoked and API_TOKEN is not set: only the open routes answer until a key is made');
  }
  if (!config.apiToken && keys.total === 0) {
    logger.warn(
      'neither API_TOKEN nor any API key exists: accounts, statements, audit and linking routes answer anyone who can reach them ' +
        '(`npm run ledger -- keys create --role admin --name <label>` closes them)',
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`balance-ledger failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
