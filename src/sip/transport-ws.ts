import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { isIPv6 } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Result } from '../util/errors.ts';
import type { SipMessage } from './message.ts';
import { parseMessage, parseMessageRaw } from './parser.ts';
import { type Peer, plainHost } from './transport.ts';
import type { StreamMessageHandler, StreamTls } from './transport-tcp.ts';

/**
 * SIP over WebSocket (RFC 7118), the transport of browser phones: WSS with a
 * certificate (or plain WS, for loopback), subprotocol `sip` required
 * (section 4: a handshake without it is refused), one SIP message per
 * WebSocket message (section 5.1, so no Content-Length framing is needed).
 *
 * The server never dials out: a browser is reachable only over the connection
 * it opened (section 5: its Contact host is an invalid name), so a send names
 * the connection (`Peer.connId`) or fails. That connection is the
 * registration's flow (RFC 5626); the registrar remembers it (flows.ts).
 *
 * The HTTP(S) server under the WebSocket also answers plain requests through
 * `onHttp` (the adapter serves its browser phone there, on the same port).
 * Limits: connections per address and in total, message size (ws
 * `maxPayload`), and a ping every `pingMs` closing a connection that did not
 * answer the previous one.
 */
export interface WsInit {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** WSS with this certificate; plain WS without. */
  tls?: StreamTls;
  maxMessageBytes?: number;
  maxConnectionsPerAddress?: number;
  maxConnections?: number;
  /** Liveness ping period (default 30 s). */
  pingMs?: number;
  /** Plain HTTP(S) requests (not WebSocket upgrades); 404 when absent. */
  onHttp?: (req: IncomingMessage, res: ServerResponse) => void;
}

interface WsConn {
  ws: WebSocket;
  address: string;
  port: number;
  alive: boolean;
}

export class WsEndpoint {
  readonly secure: boolean;
  private readonly http: Server | HttpsServer;
  private readonly wss: WebSocketServer;
  private readonly conns = new Map<number, WsConn>();
  private readonly perAddress = new Map<string, number>();
  private readonly maxPerAddress: number;
  private readonly maxConns: number;
  private readonly pinger: NodeJS.Timeout;
  private nextId = 1;
  private closed = false;
  private handler: StreamMessageHandler = () => {};
  readonly stats = { accepted: 0, refused: 0, closedUnanswered: 0 };

  private constructor(http: Server | HttpsServer, init: WsInit) {
    this.http = http;
    this.secure = init.tls !== undefined;
    this.maxPerAddress = init.maxConnectionsPerAddress ?? 64;
    this.maxConns = init.maxConnections ?? 2048;
    this.wss = new WebSocketServer({
      server: http,
      maxPayload: init.maxMessageBytes ?? 65_535,
      // RFC 7118 section 4.1: the client offers "sip"; a server that does not get it refuses the handshake.
      handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false),
      verifyClient: (info, done) => {
        // Section 4.1: a handshake that does not offer "sip" is not for us (ws asks handleProtocols only when
        // the client offers some subprotocol, so it is checked here too).
        const offered = String(info.req.headers['sec-websocket-protocol'] ?? '').split(',');
        if (!offered.some((p) => p.trim() === 'sip')) {
          this.stats.refused++;
          done(false, 400, 'the sip subprotocol is required');
          return;
        }
        const address = plainHost(info.req.socket.remoteAddress ?? '');
        if (this.conns.size >= this.maxConns || (this.perAddress.get(address) ?? 0) >= this.maxPerAddress) {
          this.stats.refused++;
          done(false, 503, 'Too many connections');
          return;
        }
        done(true);
      },
    });
    this.wss.on('connection', (ws, req) => this.accept(ws, req));
    this.wss.on('error', () => {});
    http.on('error', () => {});
    http.on('tlsClientError', () => {});
    http.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (init.onHttp) init.onHttp(req, res);
      else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
      }
    });
    this.pinger = setInterval(() => this.ping(), init.pingMs ?? 30_000);
    this.pinger.unref();
  }

  static listen(init: WsInit): Promise<WsEndpoint> {
    const http = init.tls ? createHttpsServer({ ...init.tls, minVersion: 'TLSv1.2' }) : createHttpServer();
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => {
        http.close();
        reject(e);
      };
      http.once('error', onError);
      const host = plainHost(init.host);
      http.listen({ host, port: init.port, ipv6Only: isIPv6(host) && host !== '::' }, () => {
        http.off('error', onError);
        resolve(new WsEndpoint(http, init));
      });
    });
  }

  get port(): number {
    const a = this.http.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  get connections(): number {
    return this.conns.size;
  }

  onMessage(fn: StreamMessageHandler): void {
    this.handler = fn;
  }

  hasConnection(connId: number): boolean {
    return this.conns.has(connId);
  }

  /** Only over the connection `to.connId`: a WebSocket client cannot be dialled (RFC 7118 section 5). */
  send(buf: Buffer, to: Peer, cb: (err: Error | null) => void): void {
    const conn = to.connId === undefined ? undefined : this.conns.get(to.connId);
    if (!conn || conn.ws.readyState !== conn.ws.OPEN) {
      cb(new Error('the WebSocket connection of this flow is closed'));
      return;
    }
    // Section 5.1: a message that is valid UTF-8 goes in a text frame (what browsers expect), any other in a binary
    // one (a body in another encoding must arrive byte for byte).
    const text = buf.toString('utf8');
    const utf8 = Buffer.byteLength(text) === buf.length && Buffer.from(text).equals(buf);
    conn.ws.send(utf8 ? text : buf, { binary: !utf8 }, (err) => cb(err ?? null));
  }

  /** New certificate for connections from now on (WSS only); open connections keep theirs. */
  setCertificate(pair: StreamTls): void {
    if (!this.secure) throw new Error('not a WSS endpoint');
    (this.http as HttpsServer).setSecureContext({ ...pair, minVersion: 'TLSv1.2' });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pinger);
    for (const c of this.conns.values()) c.ws.terminate();
    this.conns.clear();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.http.closeAllConnections?.();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const id = this.nextId++;
    const address = plainHost(req.socket.remoteAddress ?? '');
    const conn: WsConn = { ws, address, port: req.socket.remotePort ?? 0, alive: true };
    this.conns.set(id, conn);
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    this.stats.accepted++;
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      this.conns.delete(id);
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n > 0) this.perAddress.set(address, n);
      else this.perAddress.delete(address);
    });
    ws.on('message', (data, isBinary) => this.onData(conn, id, toBuffer(data), isBinary));
  }

  private onData(conn: WsConn, id: number, buf: Buffer, _binary: boolean): void {
    conn.alive = true;
    // A CRLF keep-alive (RFC 5626 section 4.4.1 style) carries no message.
    if (buf.length === 0 || /^[\r\n]+$/.test(buf.toString('latin1'))) return;
    const result: Result<SipMessage> = parseMessage(buf);
    let raw: SipMessage | undefined;
    if (!result.ok) {
      const r = parseMessageRaw(buf);
      raw = r.ok ? r.value : undefined;
    }
    this.handler(result, raw, conn.address, conn.port, id);
  }

  private ping(): void {
    for (const c of this.conns.values()) {
      if (!c.alive) {
        this.stats.closedUnanswered++;
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
