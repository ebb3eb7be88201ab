import { Registrar } from '../../sip/registrar.ts';
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
import { SystemClock } from '../../util/clock.ts';
import { OverlayError } from '../../util/errors.ts';
import { createLogger } from '../../util/log.ts';
import { configPreamble, DAEMON_OPTIONS, logFormatOption } from '../../util/config-options.ts';
import { reloadOnSighup } from '../../util/reload.ts';

export const summary = 'standalone SIP registrar + redirect server (UDP and TCP)';

export const SPEC = {
  listen: {
    type: 'string',
    default: '127.0.0.1:5060',
    check: checkHostPort,
    help: 'host:port or [ipv6]:port (port 0 = any free port)',
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
  const minExpires = intOption(args, 'min-expires');
  const maxExpires = intOption(args, 'max-expires');
  if (maxExpires < minExpires) throw new OverlayError('BAD_ARGUMENT', '--max-expires must not be below --min-expires');
  const opsConfig = parseOpsOptions(args);
  const level = logLevelOption(args);

  const log = createLogger({ level, format: logFormatOption(args) }).child({ component: 'registrar' });
  const ops = await startOps(opsConfig, 'registrar', log);
  const clock = new SystemClock();
  let transport: TransportStack;
  try {
    transport = await TransportStack.listen({ host: listen.host, port: listen.port }, { logger: log });
  } catch (e) {
    throw new OverlayError('BAD_CONFIG', `cannot listen on ${String(args.listen)}: ${(e as Error).message}`);
  }
  const element = new SipElement({ transport: observeTransport(transport, ops.metrics), clock, logger: log });
  const registrar = new Registrar({ clock }, { minExpires, maxExpires, defaultExpires: Math.min(3600, maxExpires) });
  const server = new RedirectServer({ element, registrar, logger: log });
  const stopSweeping = startSweeping(registrar, clock);
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
        { signal, stats: { ...server.stats, door: server.door.stats, transport: transport.stats } },
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
  log.info(
    { address: transport.local.host, port: transport.local.port, listen: element.hostport, transports: ['UDP', 'TCP'] },
    `registrar listening on ${element.hostport} (UDP and TCP)`,
  );

  await stopped;
  reloader.close();
  await ops.close();
  stopSweeping();
  await element.close();
  log.flush();
  return 0;
}
