import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootstrapSpecOf, parseBootstrapSpec } from '../../secp2psip/bootstrap-spec.ts';
import { DEFAULT_NEW_NAME_LIMITS } from '../../secp2psip/bootstrap-server.ts';
import { startBootstrapDaemon } from '../../secp2psip/daemon.ts';
import { backupRegistry, REGISTRY_WITNESS } from '../../secp2psip/data-dir.ts';
import { type BootstrapInfo, NAME_RE } from '../../secp2psip/messages.ts';
import { Registry } from '../../secp2psip/registry.ts';
import { PG_URL_RE, PgRegistry, redactUrl } from '../../secp2psip/registry-pg.ts';
import {
  checkHostPort,
  dataDirOption,
  intOption,
  LOG_LEVELS,
  logLevelOption,
  type OptionSpec,
  optionsUsage,
  parseArgs,
  parseHostPort,
  requiredOption,
} from '../../util/args.ts';
import { ADMIN_SPEC, OPS_SPEC, parseOpsOptions, startOps } from '../../ops/ops-options.ts';
import { bootstrapTarget } from '../../ops/targets.ts';
import { parseAdvertise } from '../../util/advertise.ts';
import { OverlayError } from '../../util/errors.ts';
import { resultError } from '../../util/config-file.ts';
import { createLogger } from '../../util/log.ts';
import { configPreamble, DAEMON_OPTIONS, logFormatOption } from '../../util/config-options.ts';
import { reloadOnSighup } from '../../util/reload.ts';

export const summary = 'SecP2PSIP bootstrap server: admits users, stores key pieces in the ring';

/** A peer bootstrap as --peer takes it: its key and address. */
function peerCheck(v: string): string | undefined {
  const s = parseBootstrapSpec(v);
  if (!s.ok) return resultError(s);
  return s.value.key ? undefined : "needs the peer's key: <64-hex key>@host:port";
}

export const SPEC = {
  listen: { type: 'string', check: checkHostPort, help: 'TLS RPC listen host:port (port 0 = any free port)' },
  advertise: {
    type: 'string',
    help: 'ring address others dial, host:port (port 0: the bound one); default: --listen, or for a wildcard a routable address of this host',
  },
  data: { type: 'string', help: 'data directory: node/identity.pem (0600), registry.sqlite' },
  k: { type: 'string', default: '3', min: 1, max: 255, help: 'pieces needed to rebuild a user key' },
  n: { type: 'string', default: '5', min: 1, max: 255, help: 'pieces stored per user key (Username.1 .. Username.n)' },
  'ca-bundle': { type: 'string', help: 'strict mode: PEM file of trust anchors; users need a certificate' },
  registry: {
    type: 'string',
    help: 'postgres://user@host:port/db: bind names in this PostgreSQL database, shared by every bootstrap of the set (default: registry.sqlite under --data)',
  },
  release: {
    type: 'string',
    action: true,
    help: 'forget <name> in the registry (key lost or replaced), then exit; with --registry from any bootstrap, else the one that owns the name',
  },
  'accept-empty-registry': {
    type: 'boolean',
    help: 'start although the registry (registry.sqlite, or the --registry database) is empty or gone while it had users (every name becomes free)',
  },
  backup: {
    type: 'string',
    action: true,
    help: 'copy the registry under --data to this new file (safe while running), then exit',
  },
  'new-names-per-minute': {
    type: 'string',
    default: String(DEFAULT_NEW_NAME_LIMITS.perMinute),
    min: 0,
    max: 1_000_000,
    help: 'new names bound per adapter per minute (a burst of this many); 0: no limit',
  },
  'new-names-per-address': {
    type: 'string',
    default: String(DEFAULT_NEW_NAME_LIMITS.perAddressPerMinute),
    min: 0,
    max: 1_000_000,
    help: 'new names bound per adapter host address per minute; 0: no limit',
  },
  'new-names-per-adapter': {
    type: 'string',
    default: String(DEFAULT_NEW_NAME_LIMITS.perAdapter),
    min: 0,
    max: 1_000_000_000,
    help: 'new names bound per adapter in total (kept across restarts); 0: no limit',
  },
  'require-invite': { type: 'boolean', help: 'bind a new name only with an unused enrolment token (see --invite)' },
  invite: {
    type: 'boolean',
    action: true,
    help: 'print one-time enrolment tokens (stored hashed under --data), then exit',
  },
  count: { type: 'string', default: '1', action: true, min: 1, max: 10_000, help: 'with --invite: how many tokens' },
  for: { type: 'string', action: true, help: 'with --invite: the tokens admit only this name' },
  'invite-days': {
    type: 'string',
    default: '7',
    action: true,
    min: 1,
    max: 3650,
    help: 'with --invite: days until the tokens expire',
  },
  peer: {
    type: 'list',
    check: peerCheck,
    help: 'another bootstrap of the overlay, <64-hex key>@host:port (repeatable)',
  },
  ...OPS_SPEC,
  ...ADMIN_SPEC,
  'log-level': {
    type: 'string',
    default: 'info',
    choices: LOG_LEVELS,
    help: 'fatal, error, warn, info, debug, trace, silent',
  },
  ...DAEMON_OPTIONS,
  help: { type: 'boolean', help: 'show this help' },
} as const satisfies Record<string, OptionSpec>;

const usage = () => optionsUsage('usage: secp2psip bootstrap --listen <host:port> --data <dir> [options]', SPEC, 12);

/** The bootstrap's limits on new names, from its options. */
function newNameLimitsOf(args: ReturnType<typeof parseArgs>) {
  return {
    perMinute: intOption(args, 'new-names-per-minute'),
    perAddressPerMinute: intOption(args, 'new-names-per-address'),
    perAdapter: intOption(args, 'new-names-per-adapter'),
  };
}

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
async function release(args: ReturnType<typeof parseArgs>, name: string): Promise<number> {
  if (!NAME_RE.test(name)) throw new OverlayError('BAD_ARGUMENT', `--release: '${name}' is not a user name`);
  const url = sharedRegistryOption(args);
  if (url !== undefined) {
    const names = await PgRegistry.open(url);
    try {
      if (!(await names.release(name)))
        throw new OverlayError('USER_UNKNOWN', `'${name}' is not registered in ${redactUrl(url)}`);
    } finally {
      await names.close();
    }
    process.stdout.write(`released ${name}\n`);
    return 0;
  }
  const dataDir = requiredOption(args, 'data');
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

/** `--invite`: make one-time enrolment tokens in the registry and print them, one a line. */
async function invite(args: ReturnType<typeof parseArgs>): Promise<number> {
  const count = intOption(args, 'count');
  const days = intOption(args, 'invite-days');
  const name = args.for === undefined ? undefined : String(args.for);
  if (name !== undefined && !NAME_RE.test(name))
    throw new OverlayError('BAD_ARGUMENT', `--for: '${name}' is not a user name`);
  const now = Date.now();
  const url = sharedRegistryOption(args);
  if (url !== undefined) {
    const names = await PgRegistry.open(url);
    try {
      for (const t of await names.createInvites(count, now, now + days * 24 * 3600_000, name))
        process.stdout.write(`${t}\n`);
    } finally {
      await names.close();
    }
    return 0;
  }
  const dataDir = requiredOption(args, 'data');
  const path = join(dataDir, 'registry.sqlite');
  if (!existsSync(path))
    throw new OverlayError('BAD_ARGUMENT', `--data: no registry in '${dataDir}' (start the bootstrap once first)`);
  const registry = new Registry(path, { witness: join(dataDir, REGISTRY_WITNESS) });
  try {
    for (const t of registry.createInvites(count, now, now + days * 24 * 3600_000, name))
      process.stdout.write(`${t}\n`);
  } finally {
    registry.close();
  }
  return 0;
}

/** `--registry`, checked: a PostgreSQL connection string, or undefined for the file under --data. */
function sharedRegistryOption(args: ReturnType<typeof parseArgs>): string | undefined {
  if (args.registry === undefined) return undefined;
  const url = String(args.registry);
  if (!PG_URL_RE.test(url))
    throw new OverlayError('BAD_ARGUMENT', `--registry must be a postgres:// connection string, got '${url}'`);
  return url;
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
  const early = configPreamble(args, 'bootstrap');
  if (early !== undefined) return early;
  if (args.release !== undefined) return release(args, String(args.release));
  if (args.invite === true) return invite(args);
  if (args.backup !== undefined) {
    if (args.registry !== undefined)
      throw new OverlayError(
        'BAD_ARGUMENT',
        '--backup copies registry.sqlite; back up a --registry database with pg_dump',
      );
    const users = await backupRegistry(requiredOption(args, 'data'), String(args.backup));
    process.stdout.write(`backed up ${users} users to ${String(args.backup)}\n`);
    return 0;
  }
  const listen = parseHostPort(requiredOption(args, 'listen'), '--listen');
  const registry = sharedRegistryOption(args);
  const advertise = args.advertise === undefined ? undefined : parseAdvertise(String(args.advertise), '--advertise');
  const dataDir = dataDirOption(args);
  const k = intOption(args, 'k');
  const n = intOption(args, 'n');
  if (k > n) throw new OverlayError('BAD_ARGUMENT', `--k must not exceed --n (${k} > ${n})`);
  const caBundle = args['ca-bundle'] === undefined ? undefined : readCaBundle(String(args['ca-bundle']));
  const peers: BootstrapInfo[] = (args.peer as string[]).map((p) => {
    const s = parseBootstrapSpec(p);
    if (!s.ok) throw new OverlayError('BAD_ARGUMENT', `--peer: ${s.error}`);
    if (!s.value.key) throw new OverlayError('BAD_ARGUMENT', `--peer needs the peer's key: <64-hex key>@host:port`);
    return { addr: s.value.addr, key: s.value.key };
  });
  const newNames = newNameLimitsOf(args);
  const opsConfig = parseOpsOptions(args);
  const level = logLevelOption(args);
  const log = createLogger({ level, format: logFormatOption(args) }).child({ component: 'bootstrap' });
  // The operator's listener first: /readyz answers "not yet" while the bootstrap takes its place on the ring.
  const ops = await startOps(opsConfig, 'bootstrap', log);
  if (ops.lines.length > 0) process.stdout.write(`${ops.lines.join('\n')}\n`);

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
      metrics: ops.metrics,
      registry,
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
  // New-name limits and --require-invite change on SIGHUP; registrations at work keep their checks.
  const limits = (next: ReturnType<typeof parseArgs>) =>
    running.server.setNewNameLimits(newNameLimitsOf(next), next['require-invite'] === true);
  const reloader = reloadOnSighup(args, {
    argv,
    spec: SPEC,
    role: 'bootstrap',
    log,
    appliers: {
      'new-names-per-minute': limits,
      'new-names-per-address': limits,
      'new-names-per-adapter': limits,
      'require-invite': limits,
    },
  });
  ops.attach(bootstrapTarget(running), running);
  const spec = bootstrapSpecOf(running.info);
  process.stdout.write(`bootstrap ${spec}\nkey ${Buffer.from(running.info.key).toString('hex')}\n`);
  log.info(
    {
      addr: running.info.addr,
      spec,
      users: await running.server.names.count(),
      registry: registry === undefined ? 'registry.sqlite' : redactUrl(registry),
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
  reloader.close();
  await ops.close();
  await running.close();
  log.flush();
  return 0;
}
