import type { Command } from 'commander';
import { buildProjector, openRoot, type Root } from '../composition-root';
import { type Config, loadConfig } from '../config';
import { isLoopbackHost } from '../infrastructure/exposure';
import { exitGracefullyOnSignals } from '../infrastructure/shutdown';

/**
 * `ledger project`: the projection runners as a process of their own, and its GET /metrics on METRICS_PORT, until
 * SIGTERM drains them.
 */
export function addProjectCommand(program: Command): void {
  program
    .command('project')
    .description('run the projection runner as a process of its own (until SIGTERM)')
    .action(async () => {
      const config = loadConfig();
      const root = await openRoot(config, { waitForStores: true });
      const logger = root.resolve('logger');
      await refuseOpenMetrics(root, config);
      const projector = await buildProjector(root);
      if (projector.metricsServer) await projector.metricsServer.listen({ port: config.metricsPort, host: config.host });
      // Runners outlive PostgreSQL going away: they take their locks again, with backoff, when it is back.
      projector.start();
      logger.info('projection runners started');
      exitGracefullyOnSignals({ logger, timeoutMs: config.drain.timeoutMs, close: () => projector.close() });
    });
}

/** GET /metrics behind the service's keys: where other machines can reach it, only once a key (or API_TOKEN) exists. */
async function refuseOpenMetrics(root: Root, config: Config): Promise<void> {
  if (config.metricsPort === undefined || isLoopbackHost(config.host) || config.allowInsecure || config.apiToken) return;
  if ((await root.resolve('apiKeys').count()).live > 0) return;
  await root.close();
  throw new Error(
    `refusing to serve /metrics on HOST=${config.host} without an API key: set API_TOKEN, make one with ` +
      '`ledger keys create --role metrics --name <label>`, listen on 127.0.0.1, or set ALLOW_INSECURE=true',
  );
}
