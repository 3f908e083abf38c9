import { Command } from 'commander';
import { addExportCommand } from './cli/export.command';
import { addKeysCommands } from './cli/keys.commands';
import { addParkedCommands } from './cli/parked.commands';
import { addProjectCommand } from './cli/project.command';
import { addQuarantineCommands } from './cli/quarantine.commands';
import { addReadModelCommands } from './cli/read-models.commands';
import { addSweepCommand } from './cli/sweep.command';
import { ConfigError } from './config';

/** Operator commands over the same stores the server uses: `npm run ledger -- <command>`; each in src/cli/. */
const program = new Command('ledger').description('balance-ledger operations').showHelpAfterError();
addProjectCommand(program);
addReadModelCommands(program);
addSweepCommand(program);
addExportCommand(program);
addParkedCommands(program);
addQuarantineCommands(program);
addKeysCommands(program);

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`${error instanceof ConfigError || error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
