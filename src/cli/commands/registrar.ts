import { AdmissionControl } from '../../sip/admission.ts';
import { Registrar } from '../../sip/registrar.ts';
import { startKeepAlives } from '../../sip/flow-keepalive.ts';
import { startSweeping } from '../../sip/registrar-sweeper.ts';
import { RedirectServer } from '../../sip/redirect-server.ts';
import { SipElement } from '../../sip/element.ts';
import { TransportStack } from '../../sip/transport-stack.ts';
import {
  checkHostPort,
  intOption,
  LOG_LEVELS,
  logLevelOption,
  type OptionSpec,
  optionsUsage,
  parseArgs,
  parseHostPort,
} from '../../util/args.ts';
import { OPS_SPEC, parseOpsOptions, startOps } from '../../ops/ops-options.ts';
import { registrarTarget } from '../../ops/registrar-target.ts';
import { observeTransport } from '../../sip/observed-transport.ts';
import { type OpenedSecureSip, openSecureSip } from '../../sip/secure-transports.ts';
import { announceSecureSip, reloadOnHangup, SIP_TLS_SPEC, secureSipOptions } from '../../sip/secure-sip-options.ts';
import { advertisedHost, parseAdvertise } from '../../util/advertise.ts';
import { SystemClock } from '../../util/clock.ts';
import { OverlayError } from '../../util/errors.ts';
import { createLogger } from '../../util/log.ts';
import { configPreamble, DAEMON_OPTIONS, logFormatOption } from '../../util/config-options.ts';
import { reloadOnSighup } from '../../util/reload.ts';

export const summary = 'standalone SIP registrar + redirect server (UDP, TCP and TLS)';

export const SPEC = {
  listen: {
    type: 'string',
    default: '127.0.0.1:5060',
    check: checkHostPort,
    help: 'host:port or [ipv6]:port (port 0 = any free port)',
  },
  advertise: {
    type: 'string',
    help: 'address for Via and Contact, host:port (port 0: the bound one); default: --listen, or for a wildcard a routable address of this host',
  },
  'min-expires': {
    type: 'string',
    default: '60',
    min: 0,
    max: 2 ** 31,
    help: 'shortest registration accepted (s); shorter gets 423',
  },
  'max-expires': { type: 'string', default: '3600', min: 1, max: 2 ** 31, help: 'longest registration granted (s)' },
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
} as const satisfies Record<string, OptionSpec>;

const usage = () => optionsUsage('usage: secp2psip registrar [options]', SPEC, 14);

/** `secp2psip registrar`: RFC 3261 registrar and redirect server on UDP and TCP, until SIGINT/SIGTERM. */
export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPEC);
  if (args.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const early = configPreamble(args, 'registrar');
  if (early !== undefined) return early;
  const listen = parseHostPort(String(args.listen), '--listen');
  // The registrar has no data directory: without --sip-tls-cert its certificate is made anew at each start.
  const secureCfg = secureSipOptions(args, listen, false, '--listen');
  const minExpires = intOption(args, 'min-expires');
  const maxExpires = intOption(args, 'max-expires');
  if (maxExpires < minExpires) throw new OverlayError('BAD_ARGUMENT', '--max-expires must not be below --min-expires');
  const opsConfig = parseOpsOptions(args);
  const level = logLevelOption(args);
  const given = args.advertise === undefined ? undefined : parseAdvertise(String(args.advertise), '--advertise');
  const adv = advertisedHost(listen.host, given?.host, '--advertise');

  const log = createLogger({ level, format: logFormatOption(args) }).child({ component: 'registrar' });
  const ops = await startOps(opsConfig, 'registrar', log);
  const clock = new SystemClock();
  let transport: TransportStack;
  try {
    transport = await TransportStack.listen({ host: listen.host, port: listen.port }, { logger: log });
  } catch (e) {
    throw new OverlayError('BAD_CONFIG', `cannot listen on ${String(args.listen)}: ${(e as Error).message}`);
  }
  let secure: OpenedSecureSip | undefined;
  try {
    secure = await openSecureSip(transport, secureCfg, { logger: log });
  } catch (e) {
    await transport.close();
    throw e instanceof OverlayError ? e : new OverlayError('BAD_CONFIG', (e as Error).message);
  }
  // Overload: new requests beyond what this process can serve get 503 (sip/admission.ts), measured by how busy
  // its event loop is, so that queues and retransmissions never build up.
  const admission = new AdmissionControl({ clock, busyMs: () => performance.eventLoopUtilization().active });
  const element = new SipElement(
    { transport: observeTransport(transport, ops.metrics), clock, logger: log },
    // The redirect server answers from memory at once: no 100 Trying unless an INVITE waits 200 ms (17.2.1).
    { advertise: { host: adv.host, port: given?.port }, tryingDelayMs: 200, admission },
  );
  if (adv.how === 'interface')
    log.info({ advertise: adv.host, iface: adv.iface }, 'bound to a wildcard: advertising this address');
  const registrar = new Registrar({ clock }, { minExpires, maxExpires, defaultExpires: Math.min(3600, maxExpires) });
  const server = new RedirectServer({ element, registrar, logger: log });
  const stopSweeping = startSweeping(registrar, clock);
  const stopKeepAlives = startKeepAlives(registrar, transport, clock);
  ops.attach(registrarTarget({ element, registrar }), { element, registrar });
  if (ops.lines.length > 0) process.stdout.write(`${ops.lines.join('\n')}\n`);

  // Signal handlers go in before the listening line: whoever reads it may signal at once.
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    // The handlers stay installed while closing: a second signal is ignored rather than killing the process.
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info(
        {
          signal,
          stats: { ...server.stats, door: server.door.stats, transport: transport.stats, admission: admission.stats },
        },
        'registrar stopping',
      );
      resolve();
    };
    const onInt = (): void => stop('SIGINT');
    const onTerm = (): void => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  const reloader = reloadOnSighup(args, { argv, spec: SPEC, role: 'registrar', log });
  reloadOnHangup(secure, log);
  announceSecureSip(secure);
  const tls = secure?.tls ? `${element.hostportOf('TLS')}` : undefined;
  log.info(
    {
      address: transport.local.host,
      port: transport.local.port,
      listen: element.hostport,
      transports: tls ? ['UDP', 'TCP', 'TLS'] : ['UDP', 'TCP'],
      tls,
    },
    `registrar listening on ${element.hostport} (UDP and TCP)${tls ? `, TLS on ${tls}` : ''}`,
  );

  await stopped;
  reloader.close();
  await ops.close();
  stopSweeping();
  stopKeepAlives();
  await element.close();
  log.flush();
  return 0;
}
