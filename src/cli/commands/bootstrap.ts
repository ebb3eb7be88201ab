import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootstrapSpecOf, parseBootstrapSpec } from '../../secp2psip/bootstrap-spec.ts';
import { DEFAULT_NEW_NAME_LIMITS } from '../../secp2psip/bootstrap-server.ts';
import { startBootstrapDaemon } from '../../secp2psip/daemon.ts';
import { backupRegistry, REGISTRY_WITNESS } from '../../secp2psip/data-dir.ts';
import { type BootstrapInfo, NAME_RE } from '../../secp2psip/messages.ts';
import { Registry } from '../../secp2psip/registry.ts';
import {
  dataDirOption,
  intOption,
  logLevelOption,
  optionsUsage,
  parseArgs,
  parseHostPort,
  requiredOption,
} from '../../util/args.ts';
import { parseAdvertise } from '../../util/advertise.ts';
import { OverlayError } from '../../util/errors.ts';
import { createLogger } from '../../util/log.ts';

export const summary = 'SecP2PSIP bootstrap server: admits users, stores key pieces in the ring';

const SPEC = {
  listen: { type: 'string', help: 'TLS RPC listen host:port (port 0 = any free port)' },
  advertise: {
    type: 'string',
    help: 'ring address others dial, host:port (port 0: the bound one); default: --listen, or for a wildcard a routable address of this host',
  },
  data: { type: 'string', help: 'data directory: node/identity.pem (0600), registry.sqlite' },
  k: { type: 'string', default: '3', help: 'pieces needed to rebuild a user key' },
  n: { type: 'string', default: '5', help: 'pieces stored per user key (Username.1 .. Username.n)' },
  'ca-bundle': { type: 'string', help: 'strict mode: PEM file of trust anchors; users need a certificate' },
  release: {
    type: 'string',
    help: 'forget <name> in the registry under --data (key lost or replaced), then exit; use the bootstrap that owns the name',
  },
  'accept-empty-registry': {
    type: 'boolean',
    help: 'start although registry.sqlite is empty or gone while it had users (every name becomes free)',
  },
  backup: { type: 'string', help: 'copy the registry under --data to this new file (safe while running), then exit' },
  'new-names-per-minute': {
    type: 'string',
    default: String(DEFAULT_NEW_NAME_LIMITS.perMinute),
    help: 'new names bound per adapter per minute (a burst of this many); 0: no limit',
  },
  'new-names-per-address': {
    type: 'string',
    default: String(DEFAULT_NEW_NAME_LIMITS.perAddressPerMinute),
    help: 'new names bound per adapter host address per minute; 0: no limit',
  },
  'new-names-per-adapter': {
    type: 'string',
    default: String(DEFAULT_NEW_NAME_LIMITS.perAdapter),
    help: 'new names bound per adapter in total (kept across restarts); 0: no limit',
  },
  'require-invite': { type: 'boolean', help: 'bind a new name only with an unused enrolment token (see --invite)' },
  invite: { type: 'boolean', help: 'print one-time enrolment tokens (stored hashed under --data), then exit' },
  count: { type: 'string', default: '1', help: 'with --invite: how many tokens' },
  for: { type: 'string', help: 'with --invite: the tokens admit only this name' },
  'invite-days': { type: 'string', default: '7', help: 'with --invite: days until the tokens expire' },
  peer: { type: 'list', help: 'another bootstrap of the overlay, <64-hex key>@host:port (repeatable)' },
  'log-level': { type: 'string', default: 'info', help: 'fatal, error, warn, info, debug, trace, silent' },
  help: { type: 'boolean', help: 'show this help' },
} as const;

const usage = () => optionsUsage('usage: secp2psip bootstrap --listen <host:port> --data <dir> [options]', SPEC, 12);

/** PEM bundle -> one PEM string per certificate. */
function readCaBundle(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new OverlayError('BAD_ARGUMENT', `--ca-bundle: ${(e as Error).message}`);
  }
  const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (certs.length === 0) throw new OverlayError('BAD_ARGUMENT', `--ca-bundle: no PEM certificate in ${path}`);
  return certs;
}

/** `--release <name>`: drop the name's binding so its user can register a new key. */
function release(dataDir: string, name: string): number {
  if (!NAME_RE.test(name)) throw new OverlayError('BAD_ARGUMENT', `--release: '${name}' is not a user name`);
  const path = join(dataDir, 'registry.sqlite');
  if (!existsSync(path)) throw new OverlayError('BAD_ARGUMENT', `--data: no registry in '${dataDir}'`);
  const registry = new Registry(path, { witness: join(dataDir, REGISTRY_WITNESS) });
  try {
    if (!registry.release(name)) throw new OverlayError('USER_UNKNOWN', `'${name}' is not registered in '${dataDir}'`);
  } finally {
    registry.close();
  }
  process.stdout.write(`released ${name}\n`);
  return 0;
}

/** `--invite`: make one-time enrolment tokens in the registry under --data and print them, one a line. */
function invite(args: ReturnType<typeof parseArgs>): number {
  const dataDir = requiredOption(args, 'data');
  const count = intOption(args, 'count', 1, 10_000);
  const days = intOption(args, 'invite-days', 1, 3650);
  const name = args.for === undefined ? undefined : String(args.for);
  if (name !== undefined && !NAME_RE.test(name))
    throw new OverlayError('BAD_ARGUMENT', `--for: '${name}' is not a user name`);
  const path = join(dataDir, 'registry.sqlite');
  if (!existsSync(path))
    throw new OverlayError('BAD_ARGUMENT', `--data: no registry in '${dataDir}' (start the bootstrap once first)`);
  const registry = new Registry(path, { witness: join(dataDir, REGISTRY_WITNESS) });
  try {
    const now = Date.now();
    for (const t of registry.createInvites(count, now, now + days * 24 * 3600_000, name))
      process.stdout.write(`${t}\n`);
  } finally {
    registry.close();
  }
  return 0;
}

/**
 * `secp2psip bootstrap`: seed 000 IV.2. Prints `bootstrap <hash>@host:port`
 * (what adapters pass to --bootstrap) and `key <64 hex>` (what other
 * bootstraps pass to --peer) on stdout; runs until SIGINT/SIGTERM.
 */
export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPEC);
  if (args.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (args.release !== undefined) return release(requiredOption(args, 'data'), String(args.release));
  if (args.invite === true) return invite(args);
  if (args.backup !== undefined) {
    const users = await backupRegistry(requiredOption(args, 'data'), String(args.backup));
    process.stdout.write(`backed up ${users} users to ${String(args.backup)}\n`);
    return 0;
  }
  const listen = parseHostPort(requiredOption(args, 'listen'), '--listen');
  const advertise = args.advertise === undefined ? undefined : parseAdvertise(String(args.advertise), '--advertise');
  const dataDir = dataDirOption(args);
  const k = intOption(args, 'k', 1, 255);
  const n = intOption(args, 'n', 1, 255);
  if (k > n) throw new OverlayError('BAD_ARGUMENT', `--k must not exceed --n (${k} > ${n})`);
  const caBundle = args['ca-bundle'] === undefined ? undefined : readCaBundle(String(args['ca-bundle']));
  const peers: BootstrapInfo[] = (args.peer as string[]).map((p) => {
    const s = parseBootstrapSpec(p);
    if (!s.ok) throw new OverlayError('BAD_ARGUMENT', `--peer: ${s.error}`);
    if (!s.value.key) throw new OverlayError('BAD_ARGUMENT', `--peer needs the peer's key: <64-hex key>@host:port`);
    return { addr: s.value.addr, key: s.value.key };
  });
  const newNames = {
    perMinute: intOption(args, 'new-names-per-minute', 0, 1_000_000),
    perAddressPerMinute: intOption(args, 'new-names-per-address', 0, 1_000_000),
    perAdapter: intOption(args, 'new-names-per-adapter', 0, 1_000_000_000),
  };
  const level = logLevelOption(args);
  const log = createLogger({ level }).child({ component: 'bootstrap' });

  let running: Awaited<ReturnType<typeof startBootstrapDaemon>>;
  try {
    running = await startBootstrapDaemon({
      host: listen.host,
      port: listen.port,
      advertise,
      dataDir,
      k,
      n,
      caBundle,
      peers: peers.length > 0 ? peers : undefined,
      logger: log,
      acceptEmptyRegistry: args['accept-empty-registry'] === true,
      newNames,
      requireInvite: args['require-invite'] === true,
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' || (e as NodeJS.ErrnoException).code === 'EACCES')
      throw new OverlayError('BAD_CONFIG', `cannot listen on ${String(args.listen)}: ${(e as Error).message}`);
    throw e;
  }
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, stats: running.server.stats }, 'bootstrap stopping');
      resolve();
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  const spec = bootstrapSpecOf(running.info);
  process.stdout.write(`bootstrap ${spec}\nkey ${Buffer.from(running.info.key).toString('hex')}\n`);
  log.info(
    {
      addr: running.info.addr,
      spec,
      users: running.server.registry.count(),
      k,
      n,
      strict: caBundle !== undefined,
      newNames,
      requireInvite: args['require-invite'] === true,
      bootstraps: running.server.bootstraps.length,
    },
    `bootstrap listening on ${running.info.addr}`,
  );
  await stopped;
  await running.close();
  log.flush();
  return 0;
}
