import type { Command } from 'commander';
import { rebuildProjection } from '../infrastructure/read-model-maintenance';
import { jsonText, progressBar, withRoot } from './run';

/** `ledger rebuild`, `ledger verify`, `ledger status`: the read models against the log. */
export function addReadModelCommands(program: Command): void {
  program
    .command('rebuild')
    .description('drop and rebuild every read model from event zero (a fresh schema swapped in when complete)')
    .action(() =>
      withRoot(async (root) => {
        const { db } = root.resolve('database');
        for (const projection of root.resolve('projections')) {
          const bar = progressBar(`rebuild ${projection.name}`);
          const started = Date.now();
          const { eventsReplayed } = await rebuildProjection({ db, eventStore: root.resolve('eventStore'), projection, onProgress: bar.update });
          bar.stop();
          process.stdout.write(`${projection.name}: rebuilt from ${eventsReplayed} events in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        }
      }),
    );

  program
    .command('verify')
    .description('replay the whole log into a scratch schema and compare it with the live read models; exit 1 on any difference')
    .action(() =>
      withRoot(async (root) => {
        const bar = progressBar('verify');
        const outcome = await root.resolve('verifier').run(bar.update);
        bar.stop();
        if (outcome.status === 'busy') {
          const { running } = outcome;
          process.stderr.write(`a verify is already running${running ? `: ${running.id}, started at ${running.startedAt.toISOString()}` : ''}\n`);
          process.exitCode = 2;
          return;
        }
        const report = { id: outcome.run.id, startedAt: outcome.run.startedAt, ...outcome.report };
        process.stdout.write(`${jsonText(report)}\n`);
        if (!report.ok) process.exitCode = 1;
      }),
    );

  program
    .command('status')
    .description("each projection's checkpoint and lag")
    .action(() =>
      withRoot(async (root) => {
        for (const runner of root.resolve('runners')) process.stdout.write(`${jsonText(await runner.status())}\n`);
      }),
    );
}
