/**
 * RpcEndpoint over TLS 1.3 on TCP with mutual authentication by pinned keys.
 *
 * - Both sides present a node certificate whose public key is the node's
 *   Ed25519 key (tls-cert.ts); TLS 1.3 CertificateVerify (RFC 8446 section
 *   4.4.3) proves possession of that key, on both sides since the server asks
 *   for a client certificate (section 4.3.2).
 * - No CA: the caller pins `NodeRef.key` and refuses a server whose
 *   certificate carries another key (RPC_PEER_KEY_MISMATCH); the callee reads
 *   the caller's key from its certificate (`Caller.key`).
 * - The caller then sends its own NodeRef once (hello); the callee refuses the
 *   connection if the ref's key is not the certificate key or `verifyRef`
 *   rejects its id.
 * - One connection per peer, used in both directions, requests multiplexed by
 *   id; concurrent dials to one peer share one handshake.
 * - Nothing is served on an inbound link before its HELLO was accepted, and a
 *   link must complete TLS and HELLO within deadlines (tls-connection.ts).
 *   One source address holds at most `maxConnectionsPerAddress` inbound
 *   connections (in handshake or open), so one client cannot take the slots
 *   new ring members need.
 */
import type { KeyObject } from 'node:crypto';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { createNodeCertificate, type NodeCertificate } from '../identity/certificates.ts';
import { nodeIdFromKey } from '../identity/fingerprint.ts';
import { type Clock, SystemClock, type Timer } from '../util/clock.ts';
import { isOverlayError, OverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { DEFAULT_MAX_FRAME_BYTES } from './frame.ts';
import { type ConnectionHost, RpcConnection, type TlsRpcStats } from './tls-connection.ts';
import { rawEd25519PublicKey, verifyNodeCertificate } from './tls-cert.ts';
import { clientContext, dialPinned, formatAddr, keyHex, parseAddr, SessionCache } from './tls-dial.ts';
import { LinkKeeper } from './link-keeper.ts';
import {
  emptyStats,
  type NodeRef,
  type Payload,
  type RequestHandler,
  type RequestOptions,
  type RpcEndpoint,
} from './types.ts';

import { defaultVerifyRef } from './verify-ref.ts';
import { isRelayAddr, type RelayLimits, RelayService } from './relay.ts';
import { bytesEqual } from '../util/bytes.ts';

export interface TlsRpcLimits {
  /** Largest frame body accepted or sent; a larger announced length closes the connection. */
  maxFrameBytes: number;
  /** Requests this node may have outstanding to one peer (beyond: RPC_TOO_MANY_IN_FLIGHT at once). */
  maxInFlightPerPeer: number;
  /** Requests this node serves at once on one connection (beyond: answered "busy"). */
  maxServingPerConnection: number;
  /** Unsent output on one connection beyond which that peer's new requests are dropped (it is not reading). */
  maxWriteBufferBytes: number;
  requestTimeoutMs: number;
  /** Upper bound on TCP connect + TLS handshake when dialing. */
  connectTimeoutMs: number;
  /** Inbound handshakes slower than this are dropped. */
  handshakeTimeoutMs: number;
  /** A connection with nothing in flight and no traffic for this long is closed. */
  idleTimeoutMs: number;
  maxConnections: number;
  /** Inbound connections one source address may hold at once (in handshake or open). */
  maxConnectionsPerAddress: number;
  /**
   * Apply the per-address cap to loopback sources too. Off by default: every
   * daemon of a one-host test ring (and the local demo) connects from 127.0.0.1.
   */
  capLoopback: boolean;
  /** Largest frame accepted on an inbound link before its HELLO was accepted. */
  maxHelloFrameBytes: number;
  /** An inbound link whose HELLO was not accepted this long after its TLS handshake is closed. */
  helloTimeoutMs: number;
  /**
   * A link whose requests went unanswered (one timed out) with no byte
   * received for this long is closed, so the next request dials afresh
   * (see tls-connection.ts). Default: two request timeouts.
   */
  deadLinkSilenceMs: number;
}

export const DEFAULT_TLS_RPC_LIMITS: Readonly<TlsRpcLimits> = Object.freeze({
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxInFlightPerPeer: 256,
  maxServingPerConnection: 512,
  maxWriteBufferBytes: 8 * 1024 * 1024,
  requestTimeoutMs: 5000,
  connectTimeoutMs: 3000,
  handshakeTimeoutMs: 5000,
  idleTimeoutMs: 60_000,
  maxConnections: 1024,
  maxConnectionsPerAddress: 16,
  capLoopback: false,
  maxHelloFrameBytes: 16 * 1024,
  helloTimeoutMs: 5000,
  deadLinkSilenceMs: 10_000,
});

/** At most this much of a first dial to a node behind a NAT goes to trying a direct connection (ms). */
const PUNCH_BUDGET_MS = 1500;

function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');
}

export interface TlsListenOptions {
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** TCP port (default 0: any free port). */
  port?: number;
  /** The node's Ed25519 key pair; the public key is the node key. */
  keyPair: { privateKey: KeyObject; publicKey: KeyObject };
  /** Own NodeRef fields; `id` defaults to SHA-1 of the key, `addr` to the advertised (else bound) host and port. */
  self?: { id?: string; addr?: string; admission?: Uint8Array };
  /**
   * The host others dial, when `host` is a wildcard (util/advertise.ts): `self.addr` becomes this host with the
   * bound port, so a wildcard never goes into the ring.
   */
  advertiseHost?: string;
  /** TLS certificate for the key pair (e.g. from identity/); default: a fresh self-signed one. */
  certificate?: NodeCertificate;
  /** Keys whose signature on a peer certificate is accepted besides the certificate's own. */
  trustedIssuers?: KeyObject[];
  limits?: Partial<TlsRpcLimits>;
  /** Send our NodeRef on each dialed connection (default true). */
  sendHello?: boolean;
  /** Decides whether a caller's NodeRef id is bound to its key (default: id = SHA-1(key)). */
  verifyRef?: (ref: NodeRef) => boolean;
  clock?: Clock;
  logger?: Logger;
  /** Relay circuits for nodes behind NATs (rpc/relay.ts); relaying for others is on unless `serving` is false. */
  relay?: { serving?: boolean; punch?: boolean; limits?: Partial<RelayLimits> };
}

interface PeerLink {
  conn: RpcConnection | null;
  dialing: Promise<RpcConnection> | null;
  /** Requests waiting for the dial to finish; they count towards the in-flight bound. */
  waiting: number;
}

export class TlsRpcEndpoint implements RpcEndpoint, ConnectionHost {
  readonly self: NodeRef;
  readonly stats: TlsRpcStats;
  readonly clock: Clock;
  readonly log: Logger;
  readonly limits: Readonly<TlsRpcLimits>;
  readonly maxFrameBytes: number;
  readonly maxHelloFrameBytes: number;
  readonly helloTimeoutMs: number;
  readonly maxServingPerConnection: number;
  readonly maxWriteBufferBytes: number;
  readonly deadLinkSilenceMs: number;
  /** What connections call: relay methods here, everything else the layer above's handler. */
  handler: RequestHandler | null = null;
  /** Relay circuits: this node relaying for others, and circuits to or from nodes behind NATs (rpc/relay.ts). */
  readonly relay: RelayService;
  private appHandler: RequestHandler | null = null;
  private readonly serverContext: tls.SecureContext;
  /** Hook for the layer above: is this caller's id bound to its key (derived, or admitted)? */
  verifyRef: (ref: NodeRef) => boolean;

  private readonly server: tls.Server;
  private readonly clientContext: tls.SecureContext;
  private readonly issuers: readonly KeyObject[];
  private readonly sendHello: boolean;
  private readonly links = new Map<string, PeerLink>();
  private readonly conns = new Set<RpcConnection>();
  private readonly dialSockets = new Set<tls.TLSSocket>();
  private readonly lingering = new Set<tls.TLSSocket>();
  /** Every accepted TCP socket, so close() also ends those still in their handshake. */
  private readonly acceptedSockets = new Set<net.Socket>();
  /** Accepted sockets per source address (for maxConnectionsPerAddress). */
  private readonly perAddress = new Map<string, number>();
  private sweepTimer: Timer | null = null;
  private closed = false;
  /** Links kept open and dialed ahead of need (see keepLinks). */
  readonly keeper: LinkKeeper;
  /** Tickets for resuming TLS sessions on re-dials (tls-dial.ts). */
  readonly sessions = new SessionCache();

  private constructor(opts: TlsListenOptions, self: NodeRef, cert: NodeCertificate, server: tls.Server) {
    this.self = self;
    this.clientContext = clientContext(cert);
    this.serverContext = tls.createSecureContext({
      cert: cert.certPem,
      key: cert.keyPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      // A server that asks for client certificates must name a session context, or OpenSSL answers a client
      // resuming a session (tls-dial.ts SessionCache) with an internal-error alert instead of resuming it.
      sessionIdContext: 'secp2psip-rpc',
    });
    this.server = server;
    const silence =
      opts.limits?.deadLinkSilenceMs ??
      (opts.limits?.requestTimeoutMs !== undefined ? 2 * opts.limits.requestTimeoutMs : undefined);
    this.limits = Object.freeze({
      ...DEFAULT_TLS_RPC_LIMITS,
      ...opts.limits,
      ...(silence !== undefined ? { deadLinkSilenceMs: silence } : {}),
    });
    this.deadLinkSilenceMs = this.limits.deadLinkSilenceMs;
    this.maxFrameBytes = this.limits.maxFrameBytes;
    this.maxHelloFrameBytes = this.limits.maxHelloFrameBytes;
    this.helloTimeoutMs = this.limits.helloTimeoutMs;
    this.maxServingPerConnection = this.limits.maxServingPerConnection;
    this.maxWriteBufferBytes = this.limits.maxWriteBufferBytes;
    this.clock = opts.clock ?? new SystemClock();
    this.log = (opts.logger ?? silentLogger).child({ component: 'rpc-tls', node: self.id });
    this.issuers = opts.trustedIssuers ?? [];
    this.sendHello = opts.sendHello ?? true;
    this.verifyRef = opts.verifyRef ?? defaultVerifyRef;
    this.keeper = new LinkKeeper({
      self,
      clock: this.clock,
      linked: (to) => {
        const link = this.links.get(`${to.addr}|${keyHex(to.key)}`);
        return link !== undefined && (link.dialing !== null || (link.conn !== null && !link.conn.closed));
      },
      open: (to) => this.openLink(to),
    });
    this.stats = {
      ...emptyStats(),
      connectionsDialed: 0,
      connectionsAccepted: 0,
      connectionsRefused: 0,
      handshakeFailures: 0,
      peerKeyMismatches: 0,
      lateResponses: 0,
      bytesSent: 0,
      bytesReceived: 0,
      requestsBeforeHello: 0,
      helloTimeouts: 0,
      perAddressRefused: 0,
      deadLinksClosed: 0,
    };
    this.relay = new RelayService(this, { ...opts.relay, logger: opts.logger });
    this.handler = (m, p, c) => {
      if (this.relay.handles(m)) return this.relay.handle(m, p, c);
      if (this.appHandler === null) throw new OverlayError('RPC_REFUSED', 'no handler');
      return this.appHandler(m, p, c);
    };
  }

  /** Bind the listening socket and return a ready endpoint. */
  static async listen(opts: TlsListenOptions): Promise<TlsRpcEndpoint> {
    const key = rawEd25519PublicKey(opts.keyPair.publicKey);
    if (!key.ok) throw new OverlayError('IDENTITY_BAD_KEY', key.error);
    const cert = opts.certificate ?? (await createNodeCertificate(opts.keyPair));
    const limits = { ...DEFAULT_TLS_RPC_LIMITS, ...opts.limits };
    const server = tls.createServer({
      cert: cert.certPem,
      key: cert.keyPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: false, // peers are checked by pinned key, not by CA (see onSecureConnection)
      handshakeTimeout: limits.handshakeTimeoutMs,
      noDelay: true,
    });
    server.maxConnections = limits.maxConnections;
    const host = opts.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const bound = server.address();
    const port = typeof bound === 'object' && bound !== null ? bound.port : (opts.port ?? 0);
    const self: NodeRef = {
      id: opts.self?.id ?? nodeIdFromKey(key.value),
      addr: opts.self?.addr ?? formatAddr(opts.advertiseHost ?? host, port),
      key: key.value,
    };
    if (opts.self?.admission !== undefined) self.admission = opts.self.admission;
    const ep = new TlsRpcEndpoint(opts, self, cert, server);
    ep.attach();
    return ep;
  }

  /** Local port actually bound. */
  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  /** Live connections (both directions). */
  get connectionCount(): number {
    return this.conns.size;
  }

  onRequest(handler: RequestHandler): void {
    this.appHandler = handler;
  }

  /**
   * Our address changed (a node behind a NAT now named by its relays, rpc/relay.ts): close every link, so that each
   * new one sends HELLO with the new address.
   */
  closeLinks(): void {
    for (const c of [...this.conns]) c.close(new OverlayError('RPC_UNREACHABLE', 'own address changed'), true);
  }

  /** The keys of the nodes we have a link open with (either side opened it), newest last. */
  openLinkKeys(): Uint8Array[] {
    return [...this.conns].filter((c) => !c.closed).map((c) => c.peerKey);
  }

  /** An open connection to the node with this key, whichever address it came under (newest first). */
  private openLinkTo(key: Uint8Array): RpcConnection | undefined {
    let found: RpcConnection | undefined;
    for (const c of this.conns) if (!c.closed && bytesEqual(c.peerKey, key)) found = c;
    return found;
  }

  request(to: NodeRef, method: string, payload: Payload, opts?: RequestOptions): Promise<Payload> {
    if (this.closed) return Promise.reject(new OverlayError('RPC_UNREACHABLE', 'endpoint closed'));
    const timeoutMs = opts?.timeoutMs ?? this.limits.requestTimeoutMs;
    const linkKey = `${to.addr}|${keyHex(to.key)}`;
    const link = this.links.get(linkKey);
    const conn = link?.conn;
    // Fast path: an open connection.
    if (conn && !conn.closed) {
      if (conn.inFlight + link.waiting >= this.limits.maxInFlightPerPeer) return this.tooMany(to);
      this.stats.requestsSent++;
      return conn.request(method, payload, timeoutMs);
    }
    // One link per peer whichever side opened it: any link open to its key will do (one it opened to us under
    // another address, a circuit) before a new connection or a circuit through its relays.
    const any = this.openLinkTo(to.key);
    if (any) {
      if (any.inFlight >= this.limits.maxInFlightPerPeer) return this.tooMany(to);
      this.stats.requestsSent++;
      return any.request(method, payload, timeoutMs);
    }
    if (opts?.linkOnly) return Promise.reject(new OverlayError('RPC_UNREACHABLE', 'no open link to that node'));
    return this.requestViaDial(to, linkKey, method, payload, timeoutMs);
  }

  /**
   * Whether a fresh connection to `to.addr` reaches a node proving `to.key` (a dial-back, as AutoNAT does): a new
   * TLS handshake, outside the link table (an open link to that node, e.g. the one it opened to us, proves nothing
   * about its reachability), closed at once. Never rejects.
   */
  async probe(to: NodeRef, timeoutMs = this.limits.connectTimeoutMs): Promise<boolean> {
    if (this.closed || parseAddr(to.addr) === null) return false;
    try {
      const sock = await dialPinned(to, {
        context: this.clientContext,
        issuers: this.issuers,
        clock: this.clock,
        timeoutMs,
        track: (s, live) => (live ? this.dialSockets.add(s) : this.dialSockets.delete(s)),
      });
      sock.destroy();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The peers whose links this node wants open before it needs them (a
   * routing table): the idle sweep leaves their links open and missing ones
   * are dialed in the background (link-keeper.ts). Replaces the previous set.
   */
  keepLinks(refs: readonly NodeRef[]): void {
    if (!this.closed) this.keeper.keep(refs);
  }

  /** A background dial for the keeper: true once a link to `to` is up. */
  private async openLink(to: NodeRef): Promise<boolean> {
    if (this.closed || !parseAddr(to.addr).ok) return false;
    const linkKey = `${to.addr}|${keyHex(to.key)}`;
    let link = this.links.get(linkKey);
    if (link?.conn && !link.conn.closed) return true;
    if (!link) {
      link = { conn: null, dialing: null, waiting: 0 };
      this.links.set(linkKey, link);
    }
    link.waiting++;
    try {
      link.dialing ??= this.dial(to, link, this.limits.connectTimeoutMs);
      await link.dialing;
      return true;
    } catch {
      return false;
    } finally {
      link.waiting--;
      if (link.conn === null && link.dialing === null && link.waiting === 0) this.links.delete(linkKey);
    }
  }

  private tooMany(to: NodeRef): Promise<never> {
    return Promise.reject(
      new OverlayError('RPC_TOO_MANY_IN_FLIGHT', `${this.limits.maxInFlightPerPeer} to ${to.addr}`),
    );
  }

  private async requestViaDial(
    to: NodeRef,
    linkKey: string,
    method: string,
    payload: Payload,
    timeoutMs: number,
  ): Promise<Payload> {
    const where = isRelayAddr(to.addr) ? { ok: true as const } : parseAddr(to.addr);
    if (!where.ok) throw new OverlayError('RPC_UNREACHABLE', `bad address: ${where.error}`);
    let link = this.links.get(linkKey);
    if (!link) {
      link = { conn: null, dialing: null, waiting: 0 };
      this.links.set(linkKey, link);
    }
    if (link.waiting >= this.limits.maxInFlightPerPeer) return this.tooMany(to);
    this.stats.requestsSent++;
    const started = this.clock.now();
    link.waiting++;
    let conn: RpcConnection;
    try {
      link.dialing ??= this.dial(to, link, Math.min(timeoutMs, this.limits.connectTimeoutMs));
      conn = await link.dialing;
    } finally {
      link.waiting--;
      if (link.conn === null && link.dialing === null && link.waiting === 0) this.links.delete(linkKey);
    }
    const left = Math.max(1, timeoutMs - (this.clock.now() - started));
    return conn.request(method, payload, left);
  }

  private async dial(to: NodeRef, link: PeerLink, timeoutMs: number): Promise<RpcConnection> {
    let sock: tls.TLSSocket;
    try {
      // Behind a NAT: TLS runs end to end over a circuit through one of its relays (rpc/relay.ts).
      const started = this.clock.now();
      // Direct first (TCP simultaneous open, coordinated through a relay), else the circuit itself.
      let socket: Duplex | undefined;
      if (isRelayAddr(to.addr)) {
        socket = await this.relay.punchThrough(to, Math.min(PUNCH_BUDGET_MS, timeoutMs / 2));
        socket ??= await this.relay.dialThrough(to, Math.max(1, timeoutMs - (this.clock.now() - started)));
      }
      sock = await dialPinned(to, {
        context: this.clientContext,
        issuers: this.issuers,
        clock: this.clock,
        timeoutMs: Math.max(1, timeoutMs - (this.clock.now() - started)),
        track: (s, live) => (live ? this.dialSockets.add(s) : this.dialSockets.delete(s)),
        socket,
        sessions: this.sessions,
      });
    } catch (e) {
      link.dialing = null;
      if (isOverlayError(e, 'RPC_PEER_KEY_MISMATCH')) {
        this.stats.peerKeyMismatches++;
        this.log.debug({ peer: to.addr, err: e.message }, 'peer key mismatch');
      }
      throw e;
    }
    link.dialing = null;
    if (this.closed) {
      sock.destroy();
      throw new OverlayError('RPC_UNREACHABLE', 'endpoint closed');
    }
    const conn = new RpcConnection(this, sock, to.key, false);
    this.stats.connectionsDialed++;
    this.conns.add(conn);
    if (this.sendHello) conn.sendHello(this.self);
    link.conn = conn;
    return conn;
  }

  /**
   * A circuit reached us through one of our relays (we are behind a NAT): the server side of TLS runs over it, and
   * the connection is then served like an accepted TCP connection (same certificate checks, same HELLO rule).
   */
  acceptStream(stream: Duplex): void {
    if (this.closed) {
      stream.destroy();
      return;
    }
    const sock = new tls.TLSSocket(stream as unknown as net.Socket, {
      isServer: true,
      secureContext: this.serverContext,
      requestCert: true,
      rejectUnauthorized: false,
    });
    const timer = this.clock.setTimer(this.limits.handshakeTimeoutMs, () => {
      this.stats.handshakeFailures++;
      sock.destroy();
    });
    sock.on('error', () => {
      timer.cancel();
      sock.destroy();
    });
    sock.once('secure', () => {
      timer.cancel();
      this.onSecureConnection(sock);
    });
  }

  /** ConnectionHost: check a caller's hello and remember its link for requests back to it. */
  acceptHello(conn: RpcConnection, ref: NodeRef): boolean {
    let good = false;
    try {
      good = bytesEqual(ref.key, conn.peerKey) && this.verifyRef(ref) === true;
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'verifyRef threw; refusing');
    }
    if (!good) return false;
    const linkKey = `${ref.addr}|${keyHex(ref.key)}`;
    const link = this.links.get(linkKey);
    if (!link) this.links.set(linkKey, { conn, dialing: null, waiting: 0 });
    else if (link.conn === null || link.conn.closed) link.conn = conn;
    return true;
  }

  /** ConnectionHost: forget a closed connection. */
  connectionClosed(conn: RpcConnection): void {
    this.conns.delete(conn);
    if (!this.openLinkTo(conn.peerKey)) this.relay.peerGone(conn.peerKey);
    const sock = conn.socket;
    if (!sock.destroyed) {
      // Closing gracefully (close_notify sent): close() must still be able to end it at once.
      this.lingering.add(sock);
      sock.once('close', () => this.lingering.delete(sock));
    }
    for (const [k, link] of this.links) {
      if (link.conn === conn) {
        link.conn = null;
        if (link.dialing === null && link.waiting === 0) this.links.delete(k);
      }
    }
    if (!this.closed) this.keeper.linkClosed(keyHex(conn.peerKey));
  }

  private attach(): void {
    this.server.on('connection', (s: net.Socket) => {
      const ip = s.remoteAddress ?? '?';
      const held = this.perAddress.get(ip) ?? 0;
      if (held >= this.limits.maxConnectionsPerAddress && (this.limits.capLoopback || !isLoopback(ip))) {
        this.stats.perAddressRefused++;
        this.stats.connectionsRefused++;
        this.log.debug({ peer: ip, held }, 'inbound connection over the per-address cap; closed');
        s.destroy();
        return;
      }
      this.perAddress.set(ip, held + 1);
      this.acceptedSockets.add(s);
      s.once('close', () => {
        this.acceptedSockets.delete(s);
        const left = (this.perAddress.get(ip) ?? 1) - 1;
        if (left <= 0) this.perAddress.delete(ip);
        else this.perAddress.set(ip, left);
      });
    });
    this.server.on('secureConnection', (sock: tls.TLSSocket) => this.onSecureConnection(sock));
    this.server.on('tlsClientError', (err, sock) => {
      // Non-TLS bytes, bad handshakes, handshake timeouts.
      this.stats.handshakeFailures++;
      this.stats.malformedDropped++;
      this.log.debug({ err: err.message }, 'tls handshake failed');
      sock.destroy();
    });
    this.server.on('error', (err) => this.log.error({ err: err.message }, 'rpc listener error'));
    this.scheduleSweep();
  }

  private onSecureConnection(sock: tls.TLSSocket): void {
    sock.on('error', () => sock.destroy()); // replaced by the connection's handler if accepted
    if (this.closed) {
      sock.destroy();
      return;
    }
    const got = verifyNodeCertificate(sock.getPeerX509Certificate(), this.issuers, this.clock.wallNow());
    if (!got.ok) {
      this.stats.connectionsRefused++;
      this.stats.refused++;
      this.log.debug({ why: got.error }, 'inbound connection without a valid node certificate');
      sock.destroy();
      return;
    }
    sock.removeAllListeners('error');
    this.stats.connectionsAccepted++;
    this.conns.add(new RpcConnection(this, sock, got.value, true));
  }

  /**
   * Idle sweep. The dialing side closes a connection idle for a full idle
   * period (two quiet sweeps); the accepting side waits twice as long, so the
   * dialer normally closes first and a request crossing the close is rare.
   */
  private scheduleSweep(): void {
    const every = Math.max(10, this.limits.idleTimeoutMs / 2);
    this.sweepTimer = this.clock.setTimer(every, () => {
      if (this.closed) return;
      for (const c of [...this.conns]) {
        const quiet = c.activity === c.lastSeenActivity && c.inFlight === 0 && c.serving === 0;
        c.lastSeenActivity = c.activity;
        c.idleSweeps = quiet ? c.idleSweeps + 1 : 0;
        if (c.idleSweeps >= (c.inbound ? 4 : 2) && !this.keeper.keeps(keyHex(c.peerKey))) c.close(undefined, true);
      }
      this.scheduleSweep();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sweepTimer?.cancel();
    this.keeper.stop();
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.dialSockets) s.destroy();
    this.dialSockets.clear();
    for (const s of this.acceptedSockets) s.destroy();
    this.acceptedSockets.clear();
    for (const c of [...this.conns]) c.close(new OverlayError('RPC_UNREACHABLE', 'endpoint closed'));
    for (const s of this.lingering) s.destroy();
    this.lingering.clear();
    this.links.clear();
    await done;
  }
}
