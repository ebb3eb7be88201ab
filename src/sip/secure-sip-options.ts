import type { OpenedSecureSip, SecureSipConfig } from './secure-transports.ts';
import { uriHost } from './transport.ts';
import type { Logger } from '../util/log.ts';
import { type HostPort, type ParsedArgs, optionGiven, parseHostPort } from '../util/args.ts';
import { OverlayError } from '../util/errors.ts';

/**
 * The command-line options of the phone-facing secure transports, shared by
 * the adapter, registrar, node and gateway commands: SIP over TLS beside
 * UDP/TCP (RFC 3261 26.2) and, for the adapter, SIP over WebSocket with the
 * browser phone (RFC 7118).
 */
export const SIP_TLS_SPEC = {
  'sip-tls': {
    type: 'string',
    help: 'SIP over TLS listen host:port (default: the SIP port + 1, e.g. 5061 beside 5060; any free port when that is 0; off: none)',
  },
  'sip-tls-cert': {
    type: 'string',
    help: 'PEM certificate for TLS (and WSS) (default: one made at first start, kept in the data directory if any; its SHA-256 is printed); reloaded on SIGHUP',
  },
  'sip-tls-key': { type: 'string', help: 'PEM private key of --sip-tls-cert (mode 0600)' },
} as const;

export const WS_SPEC = {
  wss: {
    type: 'string',
    help: 'SIP over secure WebSocket and the browser phone at https://host:port/phone (default: the SIP port + 2; off: none)',
  },
  ws: {
    type: 'string',
    help: 'plain WebSocket and http://host:port/phone instead of --wss, on a loopback address only',
  },
} as const;

/** `off`, a host:port, or the default: the SIP port plus `offset` (0 stays 0: any free port). */
function listenOption(
  args: ParsedArgs,
  name: string,
  sip: HostPort,
  offset: number,
  sipOption: string,
): HostPort | undefined {
  const raw = args[name];
  if (raw === 'off') return undefined;
  if (typeof raw === 'string') return parseHostPort(raw, `--${name}`);
  if (sip.port === 0) return { host: sip.host, port: 0 };
  const port = sip.port + offset;
  if (port > 65535)
    throw new OverlayError(
      'BAD_ARGUMENT',
      `--${name}: the ${sipOption} port + ${offset} is past 65535; give --${name} host:port or off`,
    );
  return { host: sip.host, port };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The secure transports the command line asks for; with `webSocket`, the WS options too. */
export function secureSipOptions(
  args: ParsedArgs,
  sip: HostPort,
  webSocket: boolean,
  sipOption = '--sip',
): SecureSipConfig {
  const certFile = typeof args['sip-tls-cert'] === 'string' ? args['sip-tls-cert'] : undefined;
  const keyFile = typeof args['sip-tls-key'] === 'string' ? args['sip-tls-key'] : undefined;
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new OverlayError('BAD_ARGUMENT', '--sip-tls-cert and --sip-tls-key go together: give both or neither');
  const cfg: SecureSipConfig = { tls: listenOption(args, 'sip-tls', sip, 1, sipOption), certFile, keyFile };
  if (!webSocket) return cfg;
  if (typeof args.ws === 'string') {
    if (optionGiven(args, 'wss') && args.wss !== 'off')
      throw new OverlayError('BAD_ARGUMENT', '--ws replaces --wss: give one of them');
    const ws = parseHostPort(args.ws, '--ws');
    // Plain WebSocket carries passwords and SDES keys in the clear: only where nothing leaves the host.
    if (!isLoopback(ws.host))
      throw new OverlayError(
        'BAD_ARGUMENT',
        `--ws must be on a loopback address (127.0.0.1, ::1), got '${ws.host}'; use --wss`,
      );
    cfg.ws = { ...ws, secure: false };
  } else {
    const wss = listenOption(args, 'wss', sip, 2, sipOption);
    if (wss) cfg.ws = { ...wss, secure: true };
  }
  if (cfg.tls && cfg.ws && cfg.tls.port !== 0 && cfg.tls.port === cfg.ws.port && cfg.tls.host === cfg.ws.host)
    throw new OverlayError('BAD_ARGUMENT', '--sip-tls and --wss name the same port');
  return cfg;
}
/**
 * Print what a phone needs to reach the secure transports: the TLS address with the certificate's SHA-256
 * fingerprint (to pin), and the browser phone's address.
 */
export function announceSecureSip(
  secure: OpenedSecureSip | undefined,
  out: NodeJS.WritableStream = process.stdout,
): void {
  if (!secure) return;
  const fp = secure.certificate.fingerprint;
  if (secure.tls) out.write(`sip-tls ${uriHost(secure.tls.host)}:${secure.tls.port} sha256 ${fp}\n`);
  if (secure.ws) {
    const { host, port, secure: wss } = secure.ws;
    out.write(`phone ${wss ? 'https' : 'http'}://${uriHost(host)}:${port}/phone\n`);
    out.write(`${wss ? 'wss' : 'ws'} ${wss ? 'wss' : 'ws'}://${uriHost(host)}:${port}${wss ? ` sha256 ${fp}` : ''}\n`);
  }
}

/**
 * SIGHUP reads the certificate files again and puts them on the listeners: new connections see the new
 * certificate, open ones keep theirs. A bad pair is logged and the old one stays.
 */
export function reloadOnHangup(secure: OpenedSecureSip | undefined, log: Logger): () => void {
  if (!secure) return () => {};
  const onHup = (): void => {
    try {
      const c = secure.reload();
      log.info(
        { fingerprint: c.fingerprint, certFile: c.certFile },
        `TLS certificate reloaded: sha256 ${c.fingerprint}`,
      );
    } catch (e) {
      log.error({ err: (e as Error).message }, 'TLS certificate not reloaded; the previous one stays in use');
    }
  };
  process.on('SIGHUP', onHup);
  return () => process.off('SIGHUP', onHup);
}
