import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { type Command, Option } from 'commander';
import { LEDGER_SCHEMA } from '../composition-root';
import { isCalendarDate } from '../domain/calendar';
import { exportEvents, toNdjsonLine } from '../infrastructure/export-events';
import { readModelIn } from '../projections/read-model';
import { progressBar, withRoot } from './run';

/** A commander parser of a YYYY-MM-DD option. */
export const isoDate = (value: string) => {
  if (!isCalendarDate(value)) throw new Error(`not a date YYYY-MM-DD: ${value}`);
  return value;
};

/** `ledger export`: events as NDJSON, streamed, with progress on stderr. */
export function addExportCommand(program: Command): void {
  program
    .command('export')
    .description("write events as NDJSON: one account's (transactions dated in the period) or the whole log's (recorded in it)")
    .option('--account <id>', 'the account id (GET /accounts)')
    .addOption(new Option('--from <date>', 'first day, YYYY-MM-DD').argParser(isoDate))
    .addOption(new Option('--to <date>', 'last day, YYYY-MM-DD').argParser(isoDate))
    .option('--out <file>', 'write here instead of standard output')
    .action((options: { account?: string; from?: string; to?: string; out?: string }) =>
      withRoot(async (root) => {
        if ((options.from === undefined) !== (options.to === undefined)) throw new Error('give both --from and --to, or neither');
        const eventStore = root.resolve('eventStore');
        const out = options.out ? createWriteStream(options.out) : process.stdout;
        const total = options.account || !eventStore.countAfter ? null : Number(await eventStore.countAfter(null));
        const bar = progressBar('export');
        let read = 0;
        for await (const event of exportEvents({
          eventStore,
          // The write pool: an export may run longer than the read pool's statement timeout allows.
          readModels: readModelIn(root.resolve('database').db, LEDGER_SCHEMA),
          ...(options.account ? { accountId: options.account } : {}),
          ...(options.from && options.to ? { from: options.from, to: options.to } : {}),
        })) {
          if (!out.write(toNdjsonLine(event))) await once(out, 'drain');
          read += 1;
          if (read % 500 === 0) bar.update({ eventsDone: read, eventsTotal: total });
        }
        bar.update({ eventsDone: read, eventsTotal: total ?? read });
        bar.stop();
        if (out !== process.stdout) {
          out.end();
          await once(out, 'finish');
        }
        process.stderr.write(`exported ${read} events\n`);
      }),
    );
}
