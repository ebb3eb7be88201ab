/**
 * Shared command line of `secp2psip node` and `secp2psip gateway`: options
 * validated once at start-up, the daemon started, its identity printed on
 * stdout (so a user can hand `<hash>@host:port` to friends), structured logs
 * on stderr, and a clean exit on SIGINT/SIGTERM.
 */
import { defaultParams, type WhanauParams } from '../dht/whanau/params.ts';
import {
  intOption,
  logLevelOption,
  type OptionSpec,
  optionsUsage,
  parseArgs,
  parseHostPort,
  requiredOption,
} from '../util/args.ts';
import { isWildcard } from '../util/advertise.ts';
import { OverlayError } from '../util/errors.ts';
import { createLogger } from '../util/log.ts';
import { type DigestAlgorithm, parseDigestAlgorithms } from '../sip/digest.ts';
import { phoneUserOptions } from '../sip/phone-user-options.ts';
import type { SecureSipConfig } from '../sip/secure-transports.ts';
import { announceSecureSip, reloadOnHangup, SIP_TLS_SPEC, secureSipOptions } from '../sip/secure-sip-options.ts';
import { startWhanauSip, type WhanauSipRole } from './daemon.ts';
import { type PeerSpec, parsePeerSpec } from './peer-book.ts';

export const WHANAUSIP_SPEC: Record<string, OptionSpec & { help: string }> = {
  sip: { type: 'string', help: 'SIP listen host:port, UDP and TCP (port 0 = any free port)' },
  dht: { type: 'string', help: 'Whanau DHT (TLS) listen host:port' },
  data: { type: 'string', help: 'data directory: identity.pem (0600) and peers.sqlite' },
  peer: { type: 'list', help: 'social peer <hash>@host:port (repeatable; persisted in --data)' },
  'admin-key': { type: 'list', help: 'Ed25519 public key (64 hex) allowed to call control RPCs (repeatable)' },
  'setup-period': { type: 'string', default: '900', help: 'SETUP runs when UTC is a multiple of this (s)' },
  'expected-nodes': { type: 'string', default: '3000', help: 'network size the table sizes are chosen for' },
  table: { type: 'string', help: 'r_d = r_f = r_s (default about sqrt(3 n))' },
  layers: { type: 'string', default: '2', help: 'Whanau layers l (more resist key clustering)' },
  advertise: {
    type: 'string',
    help: 'DHT host:port other nodes dial; its host is the SIP address too (default: --dht/--sip, or for a wildcard a routable address of this host)',
  },
  'add-user': {
    type: 'string',
    help: 'node: add a phone user (or set a new password) in --data, print its password, exit',
  },
  password: { type: 'string', help: 'with --add-user: the password (default: a generated one, printed)' },
  'remove-user': { type: 'string', help: 'node: remove a phone user from --data, exit' },
  digest: {
    type: 'string',
    default: 'SHA-256,MD5',
    help: 'node: digest algorithms offered to phones, in order (MD5 alone for old phones such as baresip 1.0)',
  },
  'open-registration': {
    type: 'boolean',
    help: 'node: no phone authentication, anyone reaching --sip may register the node (local tests only)',
  },
  ...SIP_TLS_SPEC,
  'log-level': { type: 'string', default: 'info', help: 'fatal, error, warn, info, debug, trace, silent' },
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
  openRegistration: boolean;
  digestAlgorithms: DigestAlgorithm[];
}

/** Validate the command line; every problem is one BAD_ARGUMENT line. */
export function parseWhanauSipArgs(argv: string[]): WhanauSipConfig | 'help' | number {
  const args = parseArgs(argv, WHANAUSIP_SPEC);
  if (args.help) return 'help';
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
  const periodS = intOption(args, 'setup-period', 1, 7 * 24 * 3600);
  const n = intOption(args, 'expected-nodes', 2, 100_000_000);
  const layers = intOption(args, 'layers', 1, 32);
  const overrides: Partial<WhanauParams> = { periodMs: periodS * 1000, layers };
  if (args.table !== undefined) {
    const r = intOption(args, 'table', 1, 1_000_000);
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
  const digestAlgorithms = parseDigestAlgorithms(String(args.digest));
  if (typeof digestAlgorithms === 'string') throw new OverlayError('BAD_ARGUMENT', `--digest: ${digestAlgorithms}`);
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
    openRegistration,
    digestAlgorithms,
  };
}

/** Run a node or gateway until SIGINT/SIGTERM. */
export async function runWhanauSipCommand(role: WhanauSipRole, argv: string[]): Promise<number> {
  const cfg = parseWhanauSipArgs(argv);
  if (cfg === 'help') {
    process.stdout.write(`${usage(role)}\n`);
    return 0;
  }
  // --add-user / --remove-user: done, exit.
  if (typeof cfg === 'number') return cfg;
  const log = createLogger({ level: cfg.logLevel }).child({ component: role });
  const running = await startWhanauSip({
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
    digestAlgorithms: cfg.digestAlgorithms,
    secure: cfg.secure,
    logger: log,
  });
  const d = running.daemon;
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
  await running.close();
  log.flush();
  return 0;
}
