import { migrateRegistry } from '../../secp2psip/registry-migrate.ts';
import { optionsUsage, parseArgs, requiredOption } from '../../util/args.ts';
import { OverlayError } from '../../util/errors.ts';

export const summary = 'shared name registry: copy a bootstrap registry.sqlite into PostgreSQL (registry migrate)';

const SPEC = {
  from: { type: 'string', help: "with migrate: a bootstrap's registry file (<data>/registry.sqlite) to copy" },
  to: { type: 'string', help: 'with migrate: the PostgreSQL database, postgres://user@host:port/db' },
  help: { type: 'boolean', help: 'show this help' },
} as const;

const usage = () =>
  optionsUsage('usage: secp2psip registry migrate --from <registry.sqlite> --to <postgres://...>', SPEC, 6);

/**
 * `secp2psip registry migrate`: copy a registry file into a shared database
 * (secp2psip/registry-migrate.ts). Prints one line with what was copied and
 * one line per conflicting name; exits 1 when there were conflicts.
 */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(`${usage()}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'migrate') throw new OverlayError('BAD_ARGUMENT', `unknown registry command '${sub}' (try migrate)`);
  const args = parseArgs(rest, SPEC);
  if (args.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const from = requiredOption(args, 'from');
  const to = requiredOption(args, 'to');
  const r = await migrateRegistry(from, to);
  process.stdout.write(
    `copied ${r.copied} names (${r.same} already there with the same key, ${r.conflicts.length} conflicts), ` +
      `${r.nodeCounts} adapter counts, ${r.invites} enrolment tokens\n`,
  );
  for (const name of r.conflicts)
    process.stdout.write(`conflict ${name}: already registered in the database with another key (left as it is)\n`);
  return r.conflicts.length > 0 ? 1 : 0;
}
