import { join } from 'node:path';
import { bootstrapSpecOf, parseBootstrapSpec, resolveBootstrap } from '../../secp2psip/bootstrap-spec.ts';
import type { SecurityMode } from '../../secp2psip/call-common.ts';
import { fetchPeerKey, startAdapterDaemon } from '../../secp2psip/daemon.ts';
import { INVITE_RE, NAME_RE } from '../../secp2psip/messages.ts';
import { FileUserKeys } from '../../secp2psip/user-keys.ts';
import type { RebuildMode } from '../../secp2psip/key-lookup.ts';
import {
  checkHostPort,
  configFileOf,
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
import { callObserver } from '../../ops/call-metrics.ts';
import { OPS_SPEC, parseOpsOptions, startOps } from '../../ops/ops-options.ts';
import { adapterTarget } from '../../ops/targets.ts';
import { SystemClock } from '../../util/clock.ts';
import { parseAdvertise } from '../../util/advertise.ts';
import { OverlayError } from '../../util/errors.ts';
import { resultError } from '../../util/config-file.ts';
import { createLogger } from '../../util/log.ts';
import { digestCheck, parseDigestAlgorithms } from '../../sip/digest.ts';
import { phoneUserOptions } from '../../sip/phone-user-options.ts';
import { syncConfigPhoneUsers } from '../../sip/phone-config-users.ts';
import { configPreamble, DAEMON_OPTIONS, logFormatOption } from '../../util/config-options.ts';
import { reloadOnSighup } from '../../util/reload.ts';
import {
  announceSecureSip,
  reloadOnHangup,
  secureSipOptions,
  SIP_TLS_SPEC,
  WS_SPEC,
} from '../../sip/secure-sip-options.ts';
import { phonePage } from '../../phone/phone-page.ts';

export const summary = 'SecP2PSIP adapter: local SIP registrar for a phone, member of the Chord ring';

export const SPEC = {
  sip: { type: 'string', check: checkHostPort, help: 'SIP listen host:port, UDP and TCP (the phone registers here)' },
  bootstrap: {
    type: 'string',
    check: (v: string) => resultError(parseBootstrapSpec(v)),
    help: 'bootstrap as printed by it: <hash>@host:port; or <64-hex key>@host:port; or host:port (pinned on first use)',
  },
  data: { type: 'string', help: 'data directory: node key, users/<name>.pem (0600), trust.sqlite' },
  rpc: {
    type: 'string',
    check: checkHostPort,
    help: 'ring (TLS) listen host:port (default: the SIP host, any free port)',
  },
  advertise: {
    type: 'string',
    help: "SIP address phones and callers reach, host:port (port 0: the bound one); its host is the ring's too; default: --sip, or for a wildcard a routable address of this host",
  },
  'advertise-rpc': { type: 'string', help: 'ring address others dial, host:port (port 0: the bound one)' },
  mode: {
    type: 'string',
    default: 'signed',
    choices: ['signed', 'protected'],
    help: 'signed | protected (SECP2PSIP messages sealed to the callee)',
  },
  rebuild: {
    type: 'string',
    default: 'robust',
    choices: ['robust', 'seed'],
    help: 'robust (corrects bad pieces) | seed (k random pieces)',
  },
  timeout: {
    type: 'string',
    default: '5000',
    min: 100,
    max: 60_000,
    help: 'ms allowed for the callee adapter to answer',
  },
  'cache-ms': {
    type: 'string',
    default: '30000',
    min: 0,
    max: 24 * 3600_000,
    help: 'reuse a user verified through the ring for this long (0: fetch the key pieces on every call)',
  },
  'bootstrap-wait': {
    type: 'string',
    default: '120000',
    min: 0,
    max: 24 * 3600_000,
    help: 'ms to keep asking the bootstraps (the configured one, then the others of its set) at start',
  },
  'new-node-key': {
    type: 'boolean',
    help: 'make a new node key although --data holds state (the old one was lost; user keys are kept)',
  },
  'new-names-per-minute': {
    type: 'string',
    default: '10',
    min: 0,
    max: 1_000_000,
    help: 'new user names sent to the bootstrap per minute (a burst of this many); 0: no cap',
  },
  'message-days': {
    type: 'string',
    default: '7',
    min: 1,
    max: 7,
    help: 'days a message stored for an offline user lives in the ring (1..7)',
  },
  'invite-for': {
    type: 'string',
    action: true,
    help: "keep --token for this user's first registration under --data (for a bootstrap that requires enrolment tokens), then exit",
  },
  token: { type: 'string', action: true, help: 'with --invite-for: the enrolment token the bootstrap printed' },
  'add-user': {
    type: 'string',
    action: true,
    help: 'add a phone user (or set a new password) in --data, print its password, exit',
  },
  password: { type: 'string', action: true, help: 'with --add-user: the password (default: a generated one, printed)' },
  'remove-user': { type: 'string', action: true, help: 'remove a phone user from --data, exit' },
  digest: {
    type: 'string',
    default: 'SHA-256,MD5',
    check: digestCheck,
    help: 'digest algorithms offered to phones, in order (MD5 alone for old phones such as baresip 1.0)',
  },
  'open-registration': {
    type: 'boolean',
    help: 'no phone authentication: anyone reaching --sip may register any name and call as it (local demo only)',
  },
  'behind-nat': {
    type: 'boolean',
    help: 'join the ring as a client through relays without waiting for the dial-back to find it unreachable (a NAT without port forward; found by itself otherwise)',
  },
  ...OPS_SPEC,
  ...SIP_TLS_SPEC,
  ...WS_SPEC,
  'log-level': {
    type: 'string',
    default: 'info',
    choices: LOG_LEVELS,
    help: 'fatal, error, warn, info, debug, trace, silent',
  },
  ...DAEMON_OPTIONS,
  help: { type: 'boolean', help: 'show this help' },
} as const satisfies Record<string, OptionSpec>;

const usage = () =>
  optionsUsage(
    'usage: secp2psip adapter --sip <host:port> --bootstrap <spec> --data <dir> [options]\n' +
      '       secp2psip adapter --data <dir> --add-user <name> [--password <p>] | --remove-user <name>',
    SPEC,
    12,
  );

/** `--invite-for NAME --token T`: keep a user's enrolment token in the data dir (sent with its first REGISTER). */
function inviteFor(args: ReturnType<typeof parseArgs>): number {
  const dataDir = requiredOption(args, 'data');
  const name = String(args['invite-for']);
  const token = requiredOption(args, 'token');
  if (!NAME_RE.test(name)) throw new OverlayError('BAD_ARGUMENT', `--invite-for: '${name}' is not a user name`);
  if (!INVITE_RE.test(token)) throw new OverlayError('BAD_ARGUMENT', '--token: not an enrolment token');
  new FileUserKeys(join(dataDir, 'users')).saveInvite(name, token);
  process.stdout.write(`token kept for ${name}\n`);
  return 0;
}

/** `secp2psip adapter`: seed 000's adapter for one phone (or several); runs until SIGINT/SIGTERM. */
export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPEC);
  if (args.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const early = configPreamble(args, 'adapter');
  if (early !== undefined) return early;
  if (args['invite-for'] !== undefined) return inviteFor(args);
  const done = phoneUserOptions(args, 'adapter');
  if (done !== undefined) {
    process.stdout.write(`${done}\n`);
    return 0;
  }
  const sip = parseHostPort(requiredOption(args, 'sip'), '--sip');
  const secure = secureSipOptions(args, sip, true);
  const spec = parseBootstrapSpec(requiredOption(args, 'bootstrap'));
  if (!spec.ok) throw new OverlayError('BAD_ARGUMENT', `--bootstrap: ${spec.error}`);
  const dataDir = dataDirOption(args);
  const rpc = args.rpc === undefined ? undefined : parseHostPort(String(args.rpc), '--rpc');
  const advertise = args.advertise === undefined ? undefined : parseAdvertise(String(args.advertise), '--advertise');
  const rpcAdvertise =
    args['advertise-rpc'] === undefined ? undefined : parseAdvertise(String(args['advertise-rpc']), '--advertise-rpc');
  const mode = String(args.mode);
  if (mode !== 'signed' && mode !== 'protected')
    throw new OverlayError('BAD_ARGUMENT', `--mode must be signed or protected, got '${mode}'`);
  const rebuild = String(args.rebuild);
  if (rebuild !== 'robust' && rebuild !== 'seed')
    throw new OverlayError('BAD_ARGUMENT', `--rebuild must be robust or seed, got '${rebuild}'`);
  const digest = parseDigestAlgorithms(String(args.digest));
  if (!digest.ok) throw new OverlayError('BAD_ARGUMENT', `--digest: ${digest.error}`);
  const timeoutMs = intOption(args, 'timeout');
  const cacheMs = intOption(args, 'cache-ms');
  const bootstrapWaitMs = intOption(args, 'bootstrap-wait');
  const newNamesPerMinute = intOption(args, 'new-names-per-minute');
  const opsConfig = parseOpsOptions(args);
  const mailboxTtlMs = intOption(args, 'message-days') * 24 * 3600_000;
  const level = logLevelOption(args);
  const log = createLogger({ level, format: logFormatOption(args) }).child({ component: 'adapter' });
  const configUsers = configFileOf(args)?.phoneUsers;
  if (configUsers) syncConfigPhoneUsers(dataDir, configUsers);
  // The operator's listener first: /readyz answers "not yet, and why" while the adapter looks for its bootstrap.
  const ops = await startOps(opsConfig, 'adapter', log);
  if (ops.lines.length > 0) process.stdout.write(`${ops.lines.join('\n')}\n`);

  const clock = new SystemClock();
  const until = clock.now() + bootstrapWaitMs;
  // Learning the key takes a handshake with the bootstrap (unless pinned or known from its set): retried too.
  const bootstrap = await resolveBootstrap(
    spec.value,
    async (h, p) => {
      for (let wait = 500; ; wait = Math.min(wait * 2, 10_000)) {
        try {
          return await fetchPeerKey(h, p);
        } catch (e) {
          // Something that answers but does not speak TLS is the wrong address, not a bootstrap still starting.
          if (clock.now() + wait > until || /SSL routines/.test((e as Error).message)) throw e;
          log.warn({ bootstrap: `${h}:${p}`, err: (e as Error).message, retryInMs: wait }, 'bootstrap unreachable');
          // A plain timer: nothing else keeps the process alive yet (the clock's timers do not).
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    },
    dataDir,
  );
  const running = await startAdapterDaemon({
    sipHost: sip.host,
    sipPort: sip.port,
    rpcHost: rpc?.host,
    rpcPort: rpc?.port,
    advertise,
    rpcAdvertise,
    bootstrap,
    dataDir,
    mode: mode as SecurityMode,
    rebuild: rebuild as RebuildMode,
    timeoutMs,
    cacheMs,
    bootstrapWaitMs,
    logger: log,
    newNodeKey: args['new-node-key'] === true,
    newNamesPerMinute,
    mailboxTtlMs,
    openRegistration: args['open-registration'] === true,
    behindNat: args['behind-nat'] === true,
    digestAlgorithms: digest.value,
    metrics: ops.metrics,
    onCall: callObserver(ops.metrics),
    secure,
    onHttp: secure.ws ? await phonePage({ logger: log }) : undefined,
  });
  ops.attach(adapterTarget(running), running);
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, sip: running.adapter.stats, overlay: running.node.stats }, 'adapter stopping');
      resolve();
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  const reloader = reloadOnSighup(args, {
    argv,
    spec: SPEC,
    role: 'adapter',
    log,
    appliers: {
      'new-names-per-minute': (next) => running.node.setNewNamesPerMinute(intOption(next, 'new-names-per-minute')),
      'phone-users': (next) => {
        const changed = syncConfigPhoneUsers(dataDir, configFileOf(next)?.phoneUsers ?? {});
        log.info({ event: 'reload', ...changed }, 'phone users updated');
      },
    },
  });
  const self = running.node.endpoint.self;
  process.stdout.write(`adapter sip:${running.sipAddr}\nring ${self.id} ${self.addr}\n`);
  announceSecureSip(running.secure);
  reloadOnHangup(running.secure, log);
  log.info(
    { sip: running.sipAddr, rpc: self.addr, ringId: self.id, mode, bootstrap: bootstrapSpecOf(running.bootstrap) },
    `adapter listening: SIP ${running.sipAddr}, ring ${self.addr}`,
  );
  await stopped;
  reloader.close();
  await ops.close();
  await running.close();
  log.flush();
  return 0;
}
