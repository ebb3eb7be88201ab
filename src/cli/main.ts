import { traceToConfigFile } from '../util/args.ts';
import { setCommandRole } from '../util/config-file.ts';
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
  config: 'check a daemon config file (config check FILE [--role ROLE]) without starting anything',
  sim: 'simulate a DHT at scale on the in-memory network (sim chord | sim whanau)',
  status: "print a running daemon's state from its --http listener; bootstrap user administration",
  registry: 'shared name registry: copy a bootstrap registry.sqlite into PostgreSQL (registry migrate)',
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
  setCommandRole(name);
  try {
    const code = await mod.run(rest);
    process.exitCode = code ?? 0;
  } catch (e) {
    const { line, code } = fatalLine(e);
    process.stderr.write(`secp2psip ${name}: ${line}\n`);
    // Fatal means exit: a daemon that failed half-way through starting may still hold sockets
    // (a listener bound before a data file turned out unusable, a ring link, a timer); ending the
    // process releases every port instead of leaving a half-started daemon answering 503.
    process.exit(code);
  }
}

/** Socket errors Node raises from listen() and bind(), in words. */
const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this host',
  EACCES: 'permission denied (a port below 1024 needs privileges)',
};

/**
 * The one line a failed command prints, and its exit code: 2 for a bad
 * argument or configuration (a port in use is one, whichever option named
 * it), 1 for anything else. Never more than one line.
 */
export function fatalLine(e: unknown): { line: string; code: number } {
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  if (isOverlayError(e, 'BAD_ARGUMENT')) {
    const traced = traceToConfigFile(e.message);
    return { line: clarify(traced === e.message ? traced : `bad configuration: ${traced}`), code: 2 };
  }
  if (isOverlayError(e, 'BAD_CONFIG')) return { line: clarify(e.message), code: 2 };
  if ((err?.syscall === 'listen' || err?.syscall === 'bind') && err.code && LISTEN_ERRORS[err.code]) {
    const where =
      err.address === undefined ? '' : ` ${err.address.includes(':') ? `[${err.address}]` : err.address}:${err.port}`;
    return { line: `bad configuration: cannot listen on${where}: ${LISTEN_ERRORS[err.code]}`, code: 2 };
  }
  return { line: clarify(err instanceof Error ? err.message : String(e)), code: 1 };
}

/**
 * Raw system texts in words, on one line: a socket error as Node words it
 * (`listen EADDRINUSE: address already in use 127.0.0.1:5060`, `bind
 * EADDRINUSE 127.0.0.1:5060`), and OpenSSL's error line for a peer that does
 * not speak TLS (`...:SSL routines:ssl3_get_record:wrong version number:...`).
 */
export function clarify(message: string): string {
  return message
    .replace(
      /\b(?:listen|bind) (EADDRINUSE|EADDRNOTAVAIL|EACCES)\b(?::[^;\n]*?)?(?: \[?[0-9a-fA-F.:]+\]?:\d+)?(?=[;\n]|$)/g,
      (m, code: string) => LISTEN_ERRORS[code] ?? m,
    )
    .replace(
      /[0-9A-F]*:?error:[0-9A-F]+:SSL routines:[^:]*:([^:\n]+):\S*/g,
      (_m, why: string) => `no TLS answer (${why}): is this the address a bootstrap printed?`,
    )
    .replace(/\s*\n\s*/g, '; ')
    .replace(/[;:\s]+$/, '');
}
