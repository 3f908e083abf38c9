import type { Command } from 'commander';
import { longRunningComponents, openRoot, startComponents, stopComponents } from '../composition-root';
import { loadConfig } from '../config';
import { exitGracefullyOnSignals } from '../infrastructure/shutdown';

/** `ledger project`: the projection runners as a process of their own, until SIGTERM drains them. */
export function addProjectCommand(program: Command): void {
  program
    .command('project')
    .description('run the projection runner as a process of its own (until SIGTERM)')
    .action(async () => {
      const config = loadConfig();
      const root = await openRoot(config, { waitForStores: true });
      const logger = root.resolve('logger');
      const components = longRunningComponents(root, 'projector');
      // Runners outlive PostgreSQL going away: they take their locks again, with backoff, when it is back.
      startComponents(components);
      logger.info('projection runners started');
      exitGracefullyOnSignals({
        logger,
        timeoutMs: config.drain.timeoutMs,
        close: async () => {
          await stopComponents(components);
          await root.close();
        },
      });
    });
}
