import type { Command } from 'commander';
import { withRoot } from './run';

/** `ledger parked list|retry`: the same use case as GET /parked and its retry route. */
export function addParkedCommands(program: Command): void {
  const parked = program.command('parked').description('events a projection could not apply and set aside');
  parked
    .command('list')
    .description('every parked event: projection, event id, log position, type, what it concerns, tries, error')
    .option('--projection <name>', 'only this projection (ledger, grants)')
    .action((options: { projection?: string }) =>
      withRoot(async (root) => {
        const service = root.resolve('parkedEvents');
        let after: readonly string[] | null = null;
        do {
          const page = await service.list({ projection: options.projection, after, limit: 1000 });
          for (const p of page.items) {
            const concerns = [p.subject, p.transactionDate].filter((v) => v !== null).join(' ') || '-';
            process.stdout.write(`${p.projection}\t${p.eventId}\t${p.position}\t${p.type}\t${concerns}\t×${p.tries}\t${p.lastFailedAt.toISOString()}\t${p.error}\n`);
          }
          after = page.next;
        } while (after);
      }),
    );
  parked
    .command('retry [eventId]')
    .description('apply parked events again after a fix (all, or one): applied ones leave the list, failing ones stay with the new error')
    .option('--projection <name>', 'only this projection (ledger, grants)')
    .action((eventId: string | undefined, options: { projection?: string }) =>
      withRoot(async (root) => {
        const service = root.resolve('parkedEvents');
        const names = options.projection ? [options.projection] : root.resolve('projections').map((p) => p.name);
        let outcomes = 0;
        for (const name of names) {
          const results = await service.retry(name, eventId ?? null);
          if (results === null) throw new Error(`no projection named ${name}`);
          for (const r of results) {
            outcomes += 1;
            process.stdout.write(`${JSON.stringify(r)}\n`);
            if (r.outcome !== 'applied') process.exitCode = 1;
          }
        }
        if (eventId && outcomes === 0) {
          process.stderr.write(`no parked event ${eventId}\n`);
          process.exitCode = 1;
        }
      }),
    );
}
