import { parseArgs, optionsUsage, type OptionSpec } from '../../util/args.ts';
import { parseConfigText, readConfigFile } from '../../util/config-file.ts';
import { OverlayError } from '../../util/errors.ts';
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';

export const summary = 'check a daemon config file (config check FILE [--role ROLE]) without starting anything';

/** The commands that take `--config`, by the `role` a file names. */
export const ROLES = ['bootstrap', 'adapter', 'node', 'gateway', 'registrar', 'demo'] as const;

const SPEC = {
  role: { type: 'string', help: `the command the file is for (default: the file's role key): ${ROLES.join(', ')}` },
  help: { type: 'boolean', help: 'show this help' },
} as const satisfies Record<string, OptionSpec>;

const usage = () =>
  optionsUsage(
    'usage: secp2psip config check <file> [--role <command>]\n\n' +
      "Validates the file against the command's options (types, ranges, unknown keys) and exits 0,\n" +
      'or prints one line naming the file, the key and the problem and exits 2.',
    SPEC,
    6,
  );

/** A command's option table, from its module. */
export async function specOfRole(role: string): Promise<Record<string, OptionSpec>> {
  if (!(ROLES as readonly string[]).includes(role))
    throw new OverlayError('BAD_CONFIG', `role '${role}' takes no config file (one of ${ROLES.join(', ')})`);
  const mod = (await import(`./${role}.ts`)) as { SPEC: Record<string, OptionSpec> };
  return mod.SPEC;
}

/** `secp2psip config check FILE [--role R]`. */
export async function run(argv: string[]): Promise<number> {
  const [sub, file, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === 'help') {
    process.stdout.write(`${usage()}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'check')
    throw new OverlayError('BAD_ARGUMENT', `unknown subcommand 'config ${sub}' (try: config check FILE)`);
  if (file === undefined || file.startsWith('--'))
    throw new OverlayError('BAD_ARGUMENT', 'config check needs the file: secp2psip config check FILE [--role ROLE]');
  const args = parseArgs(rest, SPEC);
  let role = typeof args.role === 'string' ? args.role : undefined;
  if (role === undefined) {
    // The role decides the schema: read it first, on its own (a syntax error is reported by the full check below).
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new OverlayError('BAD_CONFIG', `${file}: cannot read: ${(e as Error).message}`);
    }
    let named: unknown;
    try {
      named = (parseToml(text) as Record<string, unknown>).role;
    } catch {
      parseConfigText(text, file, {});
    }
    if (typeof named !== 'string')
      throw new OverlayError('BAD_CONFIG', `${file}: no 'role' key: add role = "<command>" or give --role`);
    role = named;
  }
  const spec = await specOfRole(role);
  const cfg = readConfigFile(file, spec, role);
  const users = cfg.phoneUsers ? Object.keys(cfg.phoneUsers).length : 0;
  process.stdout.write(
    `${file}: ok (secp2psip ${role}, ${Object.keys(cfg.values).length} keys${users ? `, ${users} phone users` : ''})\n`,
  );
  return 0;
}
