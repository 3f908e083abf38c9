import { type Command, Option } from 'commander';
import { createApiKey, revokeApiKey, ROLE_NAMES } from '../application/access';
import type { ApiKeys } from '../application/ports/api-keys';
import { withRoot } from './run';

/** Keys need only the write-side tables: no event store, no read models. */
const withApiKeys = <T>(work: (keys: ApiKeys, now: Date) => Promise<T>): Promise<T> =>
  withRoot((root) => work(root.resolve('apiKeys'), root.resolve('clock')()), { writeSideOnly: true });

/** `ledger keys create|list|revoke`: API keys, one role each. */
export function addKeysCommands(program: Command): void {
  const keys = program.command('keys').description('API keys: Authorization: Bearer <key>, one role each');
  keys
    .command('create')
    .description('make a key and print it, once, as the only line on standard output')
    .addOption(new Option('--role <role>', 'what the key may do').choices(ROLE_NAMES).makeOptionMandatory())
    .requiredOption('--name <label>', 'who or what uses it (unique among live keys), e.g. accounting-console')
    .action((options: { role: string; name: string }) =>
      withApiKeys(async (store, now) => {
        const created = await createApiKey(store, { name: options.name, role: options.role, now });
        if (!created.ok) {
          const why = {
            invalid_role: `the role must be one of ${ROLE_NAMES.join(', ')}`,
            invalid_name: 'the name must be 1–100 letters, digits or . _ - @ : and must not look like a key or an id',
            name_taken: `a live key is already named ${options.name}: revoke it first, or choose another name`,
          }[created.error];
          throw new Error(why);
        }
        const { record } = created.value;
        process.stderr.write(`created key ${record.id} "${record.name}" with role ${record.role}; it is shown only now:\n`);
        process.stdout.write(`${created.value.key}\n`);
      }),
    );
  keys
    .command('list')
    .description('every key: id, name, role, created, last used, revoked (never the key)')
    .action(() =>
      withApiKeys(async (store) => {
        const when = (d: Date | null) => d?.toISOString() ?? '-';
        process.stdout.write('id\tname\trole\tcreated\tlast used\trevoked\n');
        for (const k of await store.list()) {
          process.stdout.write(`${k.id}\t${k.name}\t${k.role}\t${when(k.createdAt)}\t${when(k.lastUsedAt)}\t${when(k.revokedAt)}\n`);
        }
      }),
    );
  keys
    .command('revoke <idOrName>')
    .description('revoke a live key by id or name; every running service refuses it within a second')
    .action((idOrName: string) =>
      withApiKeys(async (store, now) => {
        const outcome = await revokeApiKey(store, idOrName, now);
        if (outcome.status === 'not_found') throw new Error(`no key has the id or name ${idOrName}`);
        if (outcome.status === 'already_revoked') {
          process.stderr.write(`${idOrName} is already revoked (${outcome.keys.map((k) => `${k.id} at ${k.revokedAt?.toISOString()}`).join(', ')})\n`);
          return;
        }
        process.stderr.write(`revoked key ${outcome.key.id} "${outcome.key.name}" (${outcome.key.role})\n`);
      }),
    );
}
