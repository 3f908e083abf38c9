import { type Command, Option } from 'commander';
import { dueSweep, sweepDay } from '../domain/bank-day';
import { isoDate } from './export.command';
import { jsonText, withRoot } from './run';

/** `ledger sweep [--date]`: the daily sweep by hand, once per day like the scheduled one (whatever SWEEP_AT says). */
export function addSweepCommand(program: Command): void {
  program
    .command('sweep')
    .description("the daily sweep now: backfill yesterday and today of every active grant from Cas (the day's, unless done)")
    .addOption(new Option('--date <date>', 'the bank-local day to sweep (it and the day before), YYYY-MM-DD; default today').argParser(isoDate))
    .action((options: { date?: string }) =>
      withRoot(async (root) => {
        const loop = root.resolve('sweepLoop');
        if (!loop) {
          const config = root.resolve('config');
          const missing = [...config.bankHub.missing, ...(config.secretsKey ? [] : ['SECRETS_KEY'])];
          throw new Error(`Cas BankHub is not configured (${missing.join(', ')} unset): nothing to sweep`);
        }
        // Standard output carries the report alone (withRoot logs to standard error).
        const outcome = await loop.runDay(options.date ? sweepDay(options.date) : dueSweep(root.resolve('clock')(), 0)!);
        process.stdout.write(`${jsonText(outcome)}\n`);
        if (outcome.status === 'busy') {
          process.stderr.write('another process is sweeping now\n');
          process.exitCode = 2;
        }
      }),
    );
}
