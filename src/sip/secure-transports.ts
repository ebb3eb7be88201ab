import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  loadServerCertificate,
  reloadServerCertificate,
  type ServerCertificate,
} from '../identity/server-certificate.ts';
import type { Logger } from '../util/log.ts';
import type { TransportStack } from './transport-stack.ts';
import { type StreamTls, TcpEndpoint, DEFAULT_TCP_LIMITS } from './transport-tcp.ts';
import { WsEndpoint } from './transport-ws.ts';

/**
 * The phone-facing secure transports a daemon adds beside UDP/TCP: SIP over
 * TLS (RFC 3261 26.2; `sips:` per RFC 5630) and SIP over WebSocket (RFC 7118,
 * WSS, or plain WS where the operator allows it on loopback), all with one
 * certificate that `setCertificate` replaces for new connections (SIGHUP).
 */
export interface SecureTransportsInit {
  tls?: { host: string; port: number };
  ws?: { host: string; port: number; secure: boolean; onHttp?: (req: IncomingMessage, res: ServerResponse) => void };
  certificate: StreamTls;
}

export interface SecureTransports {
  /** `host:port` of each listener that was opened. */
  tls?: { host: string; port: number };
  ws?: { host: string; port: number; secure: boolean };
}

/** Open the listeners on `stack`; one that cannot bind is an error naming it (the others are closed by the caller). */
export async function addSecureTransports(
  stack: TransportStack,
  init: SecureTransportsInit,
): Promise<SecureTransports> {
  const out: SecureTransports = {};
  if (init.tls) {
    const { host, port } = init.tls;
    let ep: TcpEndpoint;
    try {
      ep = await TcpEndpoint.listen(host, port, { ...DEFAULT_TCP_LIMITS, maxMessageBytes: 65_535 }, init.certificate);
    } catch (e) {
      throw new Error(`cannot listen for SIP over TLS on ${host}:${port}: ${(e as Error).message}`);
    }
    stack.addStream('TLS', ep, host);
    out.tls = { host, port: ep.port };
  }
  if (init.ws) {
    const { host, port, secure, onHttp } = init.ws;
    let ep: WsEndpoint;
    try {
      ep = await WsEndpoint.listen({ host, port, tls: secure ? init.certificate : undefined, onHttp });
    } catch (e) {
      throw new Error(`cannot listen for SIP over WebSocket on ${host}:${port}: ${(e as Error).message}`);
    }
    stack.addStream(secure ? 'WSS' : 'WS', ep, host);
    out.ws = { host, port: ep.port, secure };
  }
  return out;
}

/** What a command line asks for (cli/secure-sip-options.ts). */
export interface SecureSipConfig {
  tls?: { host: string; port: number };
  ws?: { host: string; port: number; secure: boolean };
  certFile?: string;
  keyFile?: string;
}

export interface OpenedSecureSip extends SecureTransports {
  certificate: ServerCertificate;
  /** Read the certificate files again and put them on the listeners (SIGHUP); throws, changing nothing, if bad. */
  reload(): ServerCertificate;
}

/**
 * Load (or make, at first start) the certificate and open the listeners `cfg` asks for on `stack`; undefined when
 * it asks for none. The certificate's SHA-256 fingerprint is logged, for phones to pin.
 */
export async function openSecureSip(
  stack: TransportStack,
  cfg: SecureSipConfig | undefined,
  c: { dataDir?: string; logger: Logger; onHttp?: (req: IncomingMessage, res: ServerResponse) => void },
): Promise<OpenedSecureSip | undefined> {
  if (!cfg || (!cfg.tls && !cfg.ws)) return undefined;
  const host = stack.local.host;
  const names = [...new Set([host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host, 'localhost'])];
  let certificate = await loadServerCertificate({
    certFile: cfg.certFile,
    keyFile: cfg.keyFile,
    dataDir: c.dataDir,
    names,
  });
  const opened = await addSecureTransports(stack, {
    tls: cfg.tls,
    ws: cfg.ws ? { ...cfg.ws, onHttp: c.onHttp } : undefined,
    certificate,
  });
  c.logger.info(
    {
      tls: opened.tls ? `${opened.tls.host}:${opened.tls.port}` : undefined,
      ws: opened.ws ? `${opened.ws.secure ? 'wss' : 'ws'}://${opened.ws.host}:${opened.ws.port}` : undefined,
      fingerprint: certificate.fingerprint,
      certFile: certificate.certFile,
      created: certificate.created,
    },
    `SIP TLS certificate sha256 ${certificate.fingerprint}`,
  );
  return {
    ...opened,
    get certificate() {
      return certificate;
    },
    reload() {
      const next = reloadServerCertificate(certificate);
      stack.setCertificate(next);
      certificate = next;
      return next;
    },
  };
}
