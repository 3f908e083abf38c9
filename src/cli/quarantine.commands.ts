import type { Command } from 'commander';
import { reingestQuarantined } from '../application/reingest-quarantined';
import { withRoot } from './run';

/** `ledger quarantine list|show|reingest`: the same use cases as GET /quarantine… */
export function addQuarantineCommands(program: Command): void {
  const quarantine = program.command('quarantine').description('bodies that could not be booked');
  quarantine
    .command('list')
    .option('--all', 'include bodies already re-ingested')
    .action((options: { all?: boolean }) =>
      withRoot(async (root) => {
        for (const entry of await root.resolve('quarantine').list({ pendingOnly: !options.all, limit: 1000 })) {
          const reasons = entry.problems.map((p) => `${p.field}: ${p.message}`).join('; ');
          process.stdout.write(`${entry.id}\t${entry.lastReceivedAt.toISOString()}\t×${entry.timesReceived}\t${entry.reingestedAt ? 'reingested' : 'pending'}\t${reasons}\n`);
        }
      }),
    );
  quarantine
    .command('show <id>')
    .description('print the body exactly as received')
    .action((id: string) =>
      withRoot(async (root) => {
        const entry = await root.resolve('quarantine').get(id);
        if (!entry) throw new Error(`no quarantined body ${id}`);
        process.stdout.write(Buffer.from(entry.rawBody));
      }),
    );
  quarantine
    .command('reingest <id>')
    .description('run a quarantined body through ingest again')
    .action((id: string) =>
      withRoot(async (root) => {
        const ingest = { eventStore: root.resolve('eventStore'), quarantine: root.resolve('quarantine') };
        const result = await reingestQuarantined(ingest, id, root.resolve('clock')());
        process.stdout.write(`${JSON.stringify(result)}\n`);
        if (result.status === 'not_found' || result.status === 'still_invalid') process.exitCode = 1;
      }),
    );
}
