import { isOverlayError } from '../util/errors.ts';

/**
 * Command dispatcher. Each command lives in `commands/<name>.ts` and exports
 * `run(argv: string[]): Promise<number | undefined>` plus a one-line `summary`.
 * A command that keeps running (a daemon) resolves once it has shut down.
 */
export const COMMANDS: Record<string, string> = {
  registrar: 'standalone SIP registrar + redirect server (UDP and TCP)',
  bootstrap: 'SecP2PSIP bootstrap server: admits users, stores key pieces in the ring',
  adapter: 'SecP2PSIP adapter: local SIP registrar for a phone, member of the Chord ring',
  demo: 'start a bootstrap and N adapters on loopback, place calls, stay up for real phones',
  node: 'WhanauSIP node: Whanau DHT member and SIP registrar for a phone',
  gateway: 'WhanauSIP gateway: answers sip:<hash>@gateway with a 302',
  sim: 'simulate a DHT at scale on the in-memory network (sim chord | sim whanau)',
};

export interface Command {
  summary?: string;
  run(argv: string[]): Promise<number | undefined>;
}

function usage(): string {
  const lines = ['usage: secp2psip <command> [options]', '', 'commands:'];
  for (const [name, summary] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${summary}`);
  lines.push('', "Run `secp2psip <command> --help` for a command's options.");
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    process.exitCode = name === undefined ? 2 : 0;
    return;
  }
  if (!Object.hasOwn(COMMANDS, name)) {
    process.stderr.write(`secp2psip: unknown command '${name}' (try --help)\n`);
    process.exitCode = 2;
    return;
  }
  let mod: Command;
  try {
    mod = (await import(`./commands/${name}.ts`)) as Command;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes(`commands/${name}.ts`)) {
      process.stderr.write(`secp2psip: command '${name}' is not available in this build\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
  try {
    const code = await mod.run(rest);
    process.exitCode = code ?? 0;
  } catch (e) {
    if (isOverlayError(e, 'BAD_ARGUMENT') || isOverlayError(e, 'BAD_CONFIG')) {
      process.stderr.write(`secp2psip ${name}: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`secp2psip ${name}: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
