import { createConnection, createServer, isIPv6, type Server, type Socket } from 'node:net';
import * as tls from 'node:tls';
import type { Result } from '../util/errors.ts';
import { StreamFramer } from './framing.ts';
import type { SipMessage } from './message.ts';
import { type Peer, plainHost } from './transport.ts';

export interface TcpInit {
  /** Close a connection after this long without traffic (ms). */
  idleMs: number;
  /** Largest message (head + body) accepted on a stream: the bound on one connection's receive buffer. */
  maxMessageBytes: number;
  /** Accepted connections open at once from one source address; more are refused (closed at once). */
  maxConnectionsPerAddress: number;
  /** Accepted connections open at once in total. */
  maxConnections: number;
  /**
   * A message begun on a connection (or, on an accepted one, the first message) must be complete this long after
   * its first byte (after the connection opened): slowloris defence. 0 switches it off.
   */
  messageTimeoutMs: number;
  /** Bytes of unfinished messages held over all connections; the connection that would exceed it is closed. */
  maxBufferedBytes: number;
}

/**
 * TLS on the stream (RFC 3261 26.2, RFC 5630): the server's certificate and key, replaceable while running. A
 * phone's certificate is not checked when we connect out to it: phones present self-signed certificates, and the
 * party at a contact is vouched for by the overlay (the callee's adapter signed the 302 that named it).
 */
export interface StreamTls {
  cert: string | Buffer;
  key: string | Buffer;
}

export const DEFAULT_TCP_LIMITS = Object.freeze({
  idleMs: 120_000,
  maxConnectionsPerAddress: 64,
  maxConnections: 2048,
  messageTimeoutMs: 10_000,
  maxBufferedBytes: 16 * 1024 * 1024,
});

/** Why connections were refused or closed by the limits (TransportStats mirrors these). */
export interface TcpLimitCounters {
  /** Accepted connections refused: the source address already had maxConnectionsPerAddress. */
  refusedPerAddress: number;
  /** Accepted connections refused: maxConnections reached. */
  refusedTotal: number;
  /** Connections closed because a message was not complete within messageTimeoutMs. */
  closedIncomplete: number;
  /** Connections closed because the bytes held for unfinished messages would exceed maxBufferedBytes. */
  closedBuffer: number;
}

interface Conn {
  id: number;
  socket: Socket;
  key: string;
  framer: StreamFramer;
  /** Accepted (counted against the caps) rather than dialled by us. */
  accepted: boolean;
  /** Source address as counted in perAddress. */
  address: string;
  /** Bytes this connection holds for an unfinished message, as last counted in `buffered`. */
  held: number;
  /** The message timer (see TcpInit.messageTimeoutMs), running while a message is incomplete. */
  timer: NodeJS.Timeout | undefined;
  /** A complete message has arrived (keep-alive pings alone do not stop an accepted connection's first timer). */
  spoke: boolean;
}

export type StreamMessageHandler = (
  result: Result<SipMessage>,
  raw: SipMessage | undefined,
  address: string,
  port: number,
  connId: number,
) => void;

const CRLF = Buffer.from('\r\n');

/**
 * TCP side of the SIP transport: a listener plus a map of open connections
 * (accepted and initiated), each with an idle timeout. Responses go back on
 * the connection a request came in on (18.2.2); a framing error closes that
 * connection only.
 *
 * Limits against resource exhaustion by strangers (nobody is authenticated at
 * this layer): accepted connections are capped per source address and in
 * total; a message must be complete within `messageTimeoutMs` of its first byte
 * (and an accepted connection must bring its first message that soon), so a
 * slowloris peer trickling a header is cut off; the bytes held for unfinished
 * messages are bounded per connection (the framer's message limit) and over
 * all connections. Each refusal is counted in `limits`.
 *
 * The TLS endpoint (SIP over TLS, RFC 3261 26.2) is the same class on a TLS
 * listener: a connection counts against the caps once its handshake is done,
 * and the handshake itself must finish within `messageTimeoutMs`.
 */
export class TcpEndpoint {
  private readonly server: Server;
  private readonly init: TcpInit;
  private readonly conns = new Map<number, Conn>();
  private readonly byKey = new Map<string, number>();
  private readonly perAddress = new Map<string, number>();
  private accepted = 0;
  private buffered = 0;
  private nextId = 1;
  private closed = false;
  readonly limits: TcpLimitCounters = { refusedPerAddress: 0, refusedTotal: 0, closedIncomplete: 0, closedBuffer: 0 };
  private messageHandler: StreamMessageHandler = () => {};
  /** Called with the reason when a connection is closed for a framing error. */
  onFramingError: (reason: string) => void = () => {};
  onConnectionCount: (n: number) => void = () => {};
  /** Called each time a limit refuses or closes a connection. */
  onLimit: (kind: keyof TcpLimitCounters) => void = () => {};

  /** Set for a TLS endpoint: connections are accepted after the handshake, and dialled with TLS. */
  private readonly secure: boolean;

  private constructor(server: Server, init: TcpInit, secure: boolean) {
    this.server = server;
    this.init = init;
    this.secure = secure;
    server.on(secure ? 'secureConnection' : 'connection', (s: Socket) => this.accept(s));
    // A failed handshake (a scanner, a phone that refuses our certificate) concerns that socket only.
    if (secure) server.on('tlsClientError', () => {});
    server.on('error', () => {});
  }

  /** A TCP listener; with `secure`, TLS (1.2 or 1.3: the SIP phones in use do not all speak 1.3). */
  static listen(host: string, port: number, init: TcpInit, secure?: StreamTls): Promise<TcpEndpoint> {
    const server: Server = secure
      ? tls.createServer({
          ...secure,
          minVersion: 'TLSv1.2',
          noDelay: true,
          // The handshake counts against the first-message deadline: a silent stranger holds no socket for long.
          handshakeTimeout: init.messageTimeoutMs > 0 ? init.messageTimeoutMs : 120_000,
        })
      : createServer({ noDelay: true });
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => {
        server.close();
        reject(e);
      };
      server.once('error', onError);
      server.listen({ host, port, ipv6Only: isIPv6(host) && host !== '::' }, () => {
        server.off('error', onError);
        resolve(new TcpEndpoint(server, init, secure !== undefined));
      });
    });
  }

  /**
   * A new certificate and key for connections accepted from now on; open connections keep theirs (they are not
   * dropped). Throws when the pair is unusable, leaving the old one in place.
   */
  setCertificate(pair: StreamTls): void {
    if (!this.secure) throw new Error('not a TLS endpoint');
    (this.server as tls.Server).setSecureContext({ ...pair, minVersion: 'TLSv1.2' });
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  /** Each well-framed message: validated, or the reason it is invalid plus the unvalidated message (for a 400). */
  onMessage(fn: StreamMessageHandler): void {
    this.messageHandler = fn;
  }

  hasConnection(connId: number): boolean {
    return this.conns.has(connId);
  }

  /** Bytes currently held for unfinished messages over all connections. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Write on connection `to.connId` if it is open, else on a connection to address:port (opened if needed), except
   * that a `connectionOnly` send never goes anywhere but `to.connId` (see response-route.ts).
   */
  send(buf: Buffer, to: Peer, cb: (err: Error | null) => void): void {
    if (this.closed) {
      cb(new Error('transport closed'));
      return;
    }
    const { address, port, connId } = to;
    let conn = connId !== undefined ? this.conns.get(connId) : undefined;
    if (!conn && to.connectionOnly) {
      cb(new Error('the connection the request came on is closed: response dropped'));
      return;
    }
    if (!conn) {
      const id = this.byKey.get(keyOf(address, port));
      conn = id !== undefined ? this.conns.get(id) : undefined;
    }
    if (!conn) {
      const host = plainHost(address);
      const socket = this.secure
        ? tls.connect({ host, port, rejectUnauthorized: false, minVersion: 'TLSv1.2' })
        : createConnection({ host, port, noDelay: true });
      socket.once('error', (e) => cb(e));
      conn = this.adopt(socket, keyOf(address, port));
    }
    conn.socket.write(buf, (err) => cb(err ?? null));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.conns.values()) {
      if (c.timer) clearTimeout(c.timer);
      c.socket.destroy();
    }
    this.conns.clear();
    this.byKey.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A connection from the listener: refused (closed at once, counted) when over a cap. */
  private accept(socket: Socket): void {
    const address = plainHost(socket.remoteAddress ?? '');
    if ((this.perAddress.get(address) ?? 0) >= this.init.maxConnectionsPerAddress) {
      this.limited('refusedPerAddress');
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    if (this.accepted >= this.init.maxConnections) {
      this.limited('refusedTotal');
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    const conn = this.adopt(socket, undefined, true);
    // The first message must come soon after the connection opens: an idle stranger holds no slot for long.
    this.armMessageTimer(conn);
  }

  private adopt(socket: Socket, key?: string, accepted = false): Conn {
    const id = this.nextId++;
    const address = plainHost(socket.remoteAddress ?? '');
    const conn: Conn = {
      id,
      socket,
      key: key ?? keyOf(address, socket.remotePort ?? 0),
      framer: new StreamFramer({ maxMessageSize: this.init.maxMessageBytes }),
      accepted,
      address,
      held: 0,
      timer: undefined,
      spoke: false,
    };
    this.conns.set(id, conn);
    this.byKey.set(conn.key, id);
    if (accepted) {
      this.accepted++;
      this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    }
    this.onConnectionCount(this.conns.size);
    socket.setTimeout(this.init.idleMs, () => socket.destroy());
    socket.on('error', () => {});
    socket.on('close', () => {
      this.conns.delete(id);
      if (this.byKey.get(conn.key) === id) this.byKey.delete(conn.key);
      if (conn.timer) clearTimeout(conn.timer);
      this.buffered -= conn.held;
      conn.held = 0;
      if (accepted) {
        this.accepted--;
        const n = (this.perAddress.get(address) ?? 1) - 1;
        if (n > 0) this.perAddress.set(address, n);
        else this.perAddress.delete(address);
      }
      this.onConnectionCount(this.conns.size);
    });
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    return conn;
  }

  private limited(kind: keyof TcpLimitCounters): void {
    this.limits[kind]++;
    this.onLimit(kind);
  }

  private armMessageTimer(conn: Conn): void {
    if (this.init.messageTimeoutMs <= 0 || conn.timer) return;
    conn.timer = setTimeout(() => {
      conn.timer = undefined;
      if (conn.socket.destroyed) return;
      this.limited('closedIncomplete');
      conn.socket.destroy();
    }, this.init.messageTimeoutMs);
    conn.timer.unref();
  }

  private onData(conn: Conn, chunk: Buffer): void {
    const address = conn.socket.remoteAddress ?? '';
    const port = conn.socket.remotePort ?? 0;
    for (const ev of conn.framer.push(chunk)) {
      if (conn.socket.destroyed) return;
      if (ev.kind === 'message') {
        // A complete message: the clock for the next one starts with its first byte.
        conn.spoke = true;
        if (conn.timer) {
          clearTimeout(conn.timer);
          conn.timer = undefined;
        }
        this.messageHandler(ev.result, ev.raw, address, port, conn.id);
      } else if (ev.kind === 'ping') conn.socket.write(CRLF);
      else if (ev.kind === 'error') {
        // 18.3: a stream that cannot be framed cannot be resynchronised: close this connection only.
        conn.socket.destroy();
        this.onFramingError(ev.error);
        return;
      }
    }
    if (conn.socket.destroyed) return;
    const held = conn.framer.buffered;
    this.buffered += held - conn.held;
    conn.held = held;
    if (held > 0 && this.buffered > this.init.maxBufferedBytes) {
      this.limited('closedBuffer');
      conn.socket.destroy();
      return;
    }
    if (held > 0) this.armMessageTimer(conn);
    else if (conn.timer && (conn.spoke || !conn.accepted)) {
      clearTimeout(conn.timer);
      conn.timer = undefined;
    }
  }
}

function keyOf(address: string, port: number): string {
  return `${plainHost(address)}|${port}`;
}
