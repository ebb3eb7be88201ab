/**
 * Dialing a peer over TLS 1.3 and checking its pinned key, plus the address
 * and key helpers the TLS endpoint shares. The server's certificate is not
 * checked against any CA: its public key must equal the key the caller
 * already knows for that peer (`NodeRef.key`), and the certificate must be
 * self-consistent (tls-cert.ts).
 */
import type { KeyObject } from 'node:crypto';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Clock } from '../util/clock.ts';
import { fail, OverlayError, ok, type Result } from '../util/errors.ts';
import type { NodeCertificate } from '../identity/certificates.ts';
import { verifyNodeCertificate } from './tls-cert.ts';
import type { NodeRef } from './types.ts';
import { bytesEqual } from '../util/bytes.ts';

/** Split `host:port` or `[v6]:port`. */
export function parseAddr(addr: string): Result<{ host: string; port: number }> {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(addr) ?? /^([^:[\]]+):(\d{1,5})$/.exec(addr);
  if (!m) return fail(`'${addr}' is not host:port`);
  const port = Number(m[2]);
  return port > 0 && port < 65536 ? ok({ host: m[1], port }) : fail(`port ${m[2]} is out of range`);
}

export function formatAddr(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const keyHexCache = new WeakMap<Uint8Array, string>();

/** Hex of a key, cached per key object (NodeRefs are reused for many requests). */
export function keyHex(key: Uint8Array): string {
  let h = keyHexCache.get(key);
  if (h === undefined) {
    h = Buffer.from(key.buffer, key.byteOffset, key.length).toString('hex');
    keyHexCache.set(key, h);
  }
  return h;
}

/**
 * TLS 1.3 session tickets (RFC 8446 section 4.6.1) from earlier connections,
 * per peer address and pinned key, so that a re-dial resumes (PSK with a
 * fresh ECDHE, section 2.2) instead of running both certificate signatures
 * and checks again. A ticket is stored only from a connection whose server
 * proved the pinned key, under that key: it is never offered to another key.
 * Why a resumed link is still pinned: docs/design.md, "Session resumption".
 */
export class SessionCache {
  private readonly tickets = new Map<string, Buffer>();
  /** Dials that offered a ticket, and those the server resumed. */
  readonly counters = { offered: 0, resumed: 0 };

  constructor(readonly max = 1024) {}

  get(to: NodeRef): Buffer | undefined {
    return this.tickets.get(cacheKey(to));
  }

  set(to: NodeRef, ticket: Buffer): void {
    const k = cacheKey(to);
    this.tickets.delete(k);
    this.tickets.set(k, ticket);
    if (this.tickets.size > this.max) this.tickets.delete(this.tickets.keys().next().value as string);
  }

  /** A ticket the server would not take (it resumed nothing): not offered again. */
  drop(to: NodeRef): void {
    this.tickets.delete(cacheKey(to));
  }
}

function cacheKey(to: NodeRef): string {
  return `${to.addr}|${keyHex(to.key)}`;
}

export interface DialOptions {
  /** Our certificate and key, prepared once per endpoint (see clientContext). */
  context: tls.SecureContext;
  issuers: readonly KeyObject[];
  clock: Clock;
  /** Budget for TCP connect + TLS handshake. */
  timeoutMs: number;
  /** Told about the socket at once, so an endpoint closing mid-dial can destroy it. */
  track?: (sock: tls.TLSSocket, live: boolean) => void;
  /** Run TLS over this stream (a relay circuit, rpc/relay.ts) instead of a TCP connection to `to.addr`. */
  socket?: Duplex;
  /** Offer a stored ticket and keep the ones this server sends (omit for a full handshake). */
  sessions?: SessionCache;
}

/** A TLS 1.3-only client context holding our node certificate; parsing it once saves a PEM parse per dial. */
export function clientContext(cert: NodeCertificate): tls.SecureContext {
  return tls.createSecureContext({
    cert: cert.certPem,
    key: cert.keyPem,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  });
}

export type DialFailure = OverlayError & { code: 'RPC_UNREACHABLE' | 'RPC_PEER_KEY_MISMATCH' };

/**
 * Open a TLS 1.3 connection to `to.addr` presenting our certificate, and
 * resolve with the socket once the server proved possession of `to.key`
 * (RFC 8446 section 4.4.3: its CertificateVerify is checked by TLS against
 * the certificate we then compare with the pinned key). Rejects with
 * RPC_UNREACHABLE or RPC_PEER_KEY_MISMATCH.
 */
export function dialPinned(to: NodeRef, opts: DialOptions): Promise<tls.TLSSocket> {
  const parsed = opts.socket ? ok({ host: '', port: 0 }) : parseAddr(to.addr);
  if (!parsed.ok) return Promise.reject(new OverlayError('RPC_UNREACHABLE', `bad address: ${parsed.error}`));
  const where = parsed.value;
  return new Promise<tls.TLSSocket>((resolve, reject) => {
    let settled = false;
    let pinned = false;
    const ticket = opts.sessions?.get(to);
    const sock = tls.connect({
      ...(opts.socket ? { socket: opts.socket } : { host: where.host, port: where.port }),
      secureContext: opts.context,
      rejectUnauthorized: false, // trust comes from the pinned key, checked below
      checkServerIdentity: () => undefined,
      ...(ticket ? { session: ticket } : {}),
    });
    if (opts.sessions) {
      const sessions = opts.sessions;
      // Tickets arrive after the handshake; one is kept only once the server proved the pinned key.
      let early: Buffer | null = null;
      sock.on('session', (t: Buffer) => {
        if (pinned) sessions.set(to, t);
        else early = t;
      });
      sock.once('secureConnect', () => {
        if (ticket) {
          sessions.counters.offered++;
          if (sock.isSessionReused()) sessions.counters.resumed++;
          else sessions.drop(to);
        }
        queueMicrotask(() => {
          if (pinned && early) sessions.set(to, early);
        });
      });
    }
    sock.setNoDelay(true);
    opts.track?.(sock, true);
    const fail = (e: OverlayError) => {
      if (settled) return;
      settled = true;
      timer.cancel();
      opts.track?.(sock, false);
      sock.destroy();
      // A handshake that failed with a ticket may have spent it (servers take a TLS 1.3 ticket once): the next
      // dial starts afresh rather than offering it again.
      if (ticket) opts.sessions?.drop(to);
      reject(e);
    };
    const timer = opts.clock.setTimer(opts.timeoutMs, () =>
      fail(new OverlayError('RPC_UNREACHABLE', `connect to ${to.addr} timed out`)),
    );
    sock.on('error', (e) => fail(new OverlayError('RPC_UNREACHABLE', `${to.addr}: ${e.message}`)));
    sock.once('close', () => fail(new OverlayError('RPC_UNREACHABLE', `${to.addr}: closed during handshake`)));
    sock.once('secureConnect', () => {
      if (settled) return;
      if (ticket && sock.isSessionReused()) {
        // Resumed: no certificate is sent again. The ticket was stored under this pinned key, from a
        // connection whose server proved that key, and only that server can complete a handshake on it.
        accept();
        return;
      }
      const got = verifyNodeCertificate(sock.getPeerX509Certificate(), opts.issuers, opts.clock.wallNow());
      if (!got.ok || !bytesEqual(got.value, to.key)) {
        const why = got.ok ? 'certificate key differs from the pinned key' : got.error;
        fail(new OverlayError('RPC_PEER_KEY_MISMATCH', `${to.addr}: ${why}`));
        return;
      }
      accept();
    });
    function accept(): void {
      settled = true;
      pinned = true;
      timer.cancel();
      opts.track?.(sock, false);
      sock.removeAllListeners('error');
      sock.removeAllListeners('close');
      resolve(sock);
    }
  });
}
