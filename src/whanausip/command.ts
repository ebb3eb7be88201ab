/**
 * Shared command line of `secp2psip node` and `secp2psip gateway`: options
 * validated once at start-up, the daemon started, its identity printed on
 * stdout (so a user can hand `<hash>@host:port` to friends), structured logs
 * on stderr, and a clean exit on SIGINT/SIGTERM.
 */
import { defaultParams, type WhanauParams } from '../dht/whanau/params.ts';
import {
  checkHostPort,
  configFileOf,
  intOption,
  LOG_LEVELS,
  logLevelOption,
  type OptionSpec,
  type ParsedArgs,
  optionsUsage,
  parseArgs,
  parseHostPort,
  requiredOption,
} from '../util/args.ts';
import { OPS_SPEC, type OpsConfig, parseOpsOptions, startOps } from '../ops/ops-options.ts';
import { whanauTarget } from '../ops/whanau-target.ts';
import { isWildcard } from '../util/advertise.ts';
import { OverlayError } from '../util/errors.ts';
import { resultError } from '../util/config-file.ts';
import { createLogger, type LogFormat } from '../util/log.ts';
import { configPreamble, DAEMON_OPTIONS, logFormatOption } from '../util/config-options.ts';
import { reloadOnSighup } from '../util/reload.ts';
import { syncConfigPhoneUsers } from '../sip/phone-config-users.ts';
import { type DigestAlgorithm, digestCheck, parseDigestAlgorithms } from '../sip/digest.ts';
import { phoneUserOptions } from '../sip/phone-user-options.ts';
import type { SecureSipConfig } from '../sip/secure-transports.ts';
import { announceSecureSip, reloadOnHangup, SIP_TLS_SPEC, secureSipOptions } from '../sip/secure-sip-options.ts';
import { startWhanauSip, type WhanauSipRole } from './daemon.ts';
import { type PeerSpec, parsePeerSpec } from './peer-book.ts';

export const WHANAUSIP_SPEC: Record<string, OptionSpec & { help: string }> = {
  sip: { type: 'string', check: checkHostPort, help: 'SIP listen host:port, UDP and TCP (port 0 = any free port)' },
  dht: { type: 'string', check: checkHostPort, help: 'Whanau DHT (TLS) listen host:port' },
  data: { type: 'string', help: 'data directory: identity.pem (0600) and peers.sqlite' },
  peer: {
    type: 'list',
    check: (v: string) => resultError(parsePeerSpec(v)),
    help: 'social peer <hash>@host:port (repeatable; persisted in --data)',
  },
  'admin-key': {
    type: 'list',
    secret: false,
    check: (v: string) => (/^[0-9a-fA-F]{64}$/.test(v) ? undefined : 'must be 64 hex'),
    help: 'Ed25519 public key (64 hex) allowed to call control RPCs (repeatable)',
  },
  'setup-period': {
    type: 'string',
    default: '900',
    min: 1,
    max: 7 * 24 * 3600,
    help: 'SETUP runs when UTC is a multiple of this (s)',
  },
  'expected-nodes': {
    type: 'string',
    default: '3000',
    min: 2,
    max: 100_000_000,
    help: 'network size the table sizes are chosen for',
  },
  table: { type: 'string', min: 1, max: 1_000_000, help: 'r_d = r_f = r_s (default about sqrt(3 n))' },
  layers: { type: 'string', default: '2', min: 1, max: 32, help: 'Whanau layers l (more resist key clustering)' },
  advertise: {
    type: 'string',
    check: checkHostPort,
    help: 'DHT host:port other nodes dial; its host is the SIP address too (default: --dht/--sip, or for a wildcard a routable address of this host)',
  },
  'add-user': {
    type: 'string',
    action: true,
    help: 'node: add a phone user (or set a new password) in --data, print its password, exit',
  },
  password: { type: 'string', action: true, help: 'with --add-user: the password (default: a generated one, printed)' },
  'remove-user': { type: 'string', action: true, help: 'node: remove a phone user from --data, exit' },
  digest: {
    type: 'string',
    default: 'SHA-256,MD5',
    check: digestCheck,
    help: 'node: digest algorithms offered to phones, in order (MD5 alone for old phones such as baresip 1.0)',
  },
  'open-registration': {
    type: 'boolean',
    help: 'node: no phone authentication, anyone reaching --sip may register the node (local tests only)',
  },
  'behind-nat': {
    type: 'boolean',
    help: 'this host cannot be dialled (a NAT without port forward): reached only through links it keeps to up to 3 of its --peer friends, which relay for it (without it, a friend dials the DHT address back at start to find out)',
  },
  ...OPS_SPEC,
  ...SIP_TLS_SPEC,
  'log-level': {
    type: 'string',
    default: 'info',
    choices: LOG_LEVELS,
    help: 'fatal, error, warn, info, debug, trace, silent',
  },
  ...DAEMON_OPTIONS,
  help: { type: 'boolean', help: 'show this help' },
};

const usage = (role: WhanauSipRole) =>
  optionsUsage(
    `usage: secp2psip ${role} --sip <host:port> --dht <host:port> --data <dir> [options]\n` +
      `       secp2psip ${role} --data <dir> --add-user <name> [--password <p>] | --remove-user <name>`,
    WHANAUSIP_SPEC,
    16,
  );

export interface WhanauSipConfig {
  sip: { host: string; port: number };
  secure: SecureSipConfig;
  dht: { host: string; port: number };
  dataDir: string;
  peers: PeerSpec[];
  adminKeys: Uint8Array[];
  params: Readonly<WhanauParams>;
  advertise?: string;
  logLevel: string;
  logFormat?: LogFormat;
  openRegistration: boolean;
  behindNat: boolean;
  digestAlgorithms: DigestAlgorithm[];
  /** The parsed options, for the SIGHUP reload. */
  args: ParsedArgs;
  ops: OpsConfig;
}

/** Validate the command line; every problem is one BAD_ARGUMENT line. */
export function parseWhanauSipArgs(argv: string[], role: WhanauSipRole = 'node'): WhanauSipConfig | 'help' | number {
  const args = parseArgs(argv, WHANAUSIP_SPEC);
  if (args.help) return 'help';
  const early = configPreamble(args, role);
  if (early !== undefined) return early;
  const done = phoneUserOptions(args, 'node');
  if (done !== undefined) {
    process.stdout.write(`${done}\n`);
    return 0;
  }
  const sip = parseHostPort(requiredOption(args, 'sip'), '--sip');
  const dht = parseHostPort(requiredOption(args, 'dht'), '--dht');
  const dataDir = requiredOption(args, 'data');
  const peers = (args.peer as string[]).map((s) => {
    const p = parsePeerSpec(s);
    if (!p.ok) throw new OverlayError('BAD_ARGUMENT', `--peer: ${p.error}`);
    return p.value;
  });
  const adminKeys = (args['admin-key'] as string[]).map((h) => {
    if (!/^[0-9a-fA-F]{64}$/.test(h)) throw new OverlayError('BAD_ARGUMENT', `--admin-key must be 64 hex, got '${h}'`);
    return new Uint8Array(Buffer.from(h, 'hex'));
  });
  const periodS = intOption(args, 'setup-period');
  const n = intOption(args, 'expected-nodes');
  const layers = intOption(args, 'layers');
  const overrides: Partial<WhanauParams> = { periodMs: periodS * 1000, layers };
  if (args.table !== undefined) {
    const r = intOption(args, 'table');
    Object.assign(overrides, { rd: r, rf: r, rs: r });
  }
  let advertise: string | undefined;
  if (args.advertise !== undefined) {
    const a = parseHostPort(String(args.advertise), '--advertise');
    if (isWildcard(a.host))
      throw new OverlayError('BAD_ARGUMENT', `--advertise must name an address others can dial, not ${a.host}`);
    if (a.port === 0) throw new OverlayError('BAD_ARGUMENT', '--advertise needs the DHT port others dial, not 0');
    advertise = a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
  }
  const logLevel = logLevelOption(args);
  let params: Readonly<WhanauParams>;
  try {
    params = defaultParams(n, overrides);
  } catch (e) {
    throw new OverlayError('BAD_ARGUMENT', (e as Error).message);
  }
  const openRegistration = args['open-registration'] === true;
  const behindNat = args['behind-nat'] === true;
  const digestAlgorithms = parseDigestAlgorithms(String(args.digest));
  if (!digestAlgorithms.ok) throw new OverlayError('BAD_ARGUMENT', `--digest: ${digestAlgorithms.error}`);
  const logFormat = logFormatOption(args);
  const ops = parseOpsOptions(args);
  const secure = secureSipOptions(args, sip, false);
  return {
    sip,
    secure,
    dht,
    dataDir,
    peers,
    adminKeys,
    params,
    advertise,
    logLevel,
    logFormat,
    openRegistration,
    behindNat,
    digestAlgorithms: digestAlgorithms.value,
    args,
    ops,
  };
}

/** Run a node or gateway until SIGINT/SIGTERM. */
export async function runWhanauSipCommand(role: WhanauSipRole, argv: string[]): Promise<number> {
  const cfg = parseWhanauSipArgs(argv, role);
  if (cfg === 'help') {
    process.stdout.write(`${usage(role)}\n`);
    return 0;
  }
  // --add-user / --remove-user: done, exit.
  if (typeof cfg === 'number') return cfg;
  const log = createLogger({ level: cfg.logLevel, format: cfg.logFormat }).child({ component: role });
  const configUsers = configFileOf(cfg.args)?.phoneUsers;
  if (configUsers) syncConfigPhoneUsers(cfg.dataDir, configUsers);
  const ops = await startOps(cfg.ops, role, log);
  if (ops.lines.length > 0) process.stdout.write(`${ops.lines.join('\n')}\n`);
  const running = await startWhanauSip({
    metrics: ops.metrics,
    role,
    sipHost: cfg.sip.host,
    sipPort: cfg.sip.port,
    dhtHost: cfg.dht.host,
    dhtPort: cfg.dht.port,
    dataDir: cfg.dataDir,
    peers: cfg.peers,
    adminKeys: cfg.adminKeys,
    params: cfg.params,
    advertise: cfg.advertise,
    openRegistration: cfg.openRegistration,
    behindNat: cfg.behindNat,
    checkReachability: true,
    digestAlgorithms: cfg.digestAlgorithms,
    secure: cfg.secure,
    logger: log,
  });
  const d = running.daemon;
  ops.attach(whanauTarget(running, role), running);
  // Signal handlers go in before the identity is announced: whoever reads it may signal at once.
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, sip: running.sip.stats, dht: d.stats, rpc: d.endpoint.stats }, `${role} stopping`);
      resolve();
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  const reloader = reloadOnSighup(cfg.args, {
    argv,
    spec: WHANAUSIP_SPEC,
    role,
    log,
    appliers: {
      'phone-users': (next) => {
        const changed = syncConfigPhoneUsers(cfg.dataDir, configFileOf(next)?.phoneUsers ?? {});
        log.info({ event: 'reload', ...changed }, 'phone users updated');
      },
    },
  });
  d.resolvePeers().then(
    (n) => log.info({ peers: n, configured: d.book.list().length }, 'peers resolved'),
    (e) => log.warn({ err: (e as Error).message }, 'peer resolution failed'),
  );
  process.stdout.write(`hash ${d.hash}\nsip ${running.uri}\npeer ${d.peerSpec}\n`);
  announceSecureSip(running.secure);
  reloadOnHangup(running.secure, log);
  log.info(
    {
      hash: d.hash,
      uri: running.uri,
      peer: d.peerSpec,
      key: Buffer.from(d.identity.bundle.sig).toString('hex'),
      setupPeriodS: d.node.params.periodMs / 1000,
    },
    `${role} listening: SIP ${running.sip.element.hostport}, DHT ${d.self.addr}`,
  );
  await stopped;
  reloader.close();
  await ops.close();
  await running.close();
  log.flush();
  return 0;
}
