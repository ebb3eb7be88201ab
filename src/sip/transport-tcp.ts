import { createConnection, createServer, isIPv6, type Server, type Socket } from 'node:net';
import type { Result } from '../util/errors.ts';
import { StreamFramer } from './framing.ts';
import type { SipMessage } from './message.ts';
import { plainHost } from './transport.ts';

export interface TcpInit {
  /** Close a connection after this long without traffic (ms). */
  idleMs: number;
  /** Largest message (head + body) accepted on a stream. */
  maxMessageBytes: number;
}

interface Conn {
  id: number;
  socket: Socket;
  key: string;
  framer: StreamFramer;
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
 */
export class TcpEndpoint {
  private readonly server: Server;
  private readonly init: TcpInit;
  private readonly conns = new Map<number, Conn>();
  private readonly byKey = new Map<string, number>();
  private nextId = 1;
  private closed = false;
  private messageHandler: StreamMessageHandler = () => {};
  /** Called with the reason when a connection is closed for a framing error. */
  onFramingError: (reason: string) => void = () => {};
  onConnectionCount: (n: number) => void = () => {};

  private constructor(server: Server, init: TcpInit) {
    this.server = server;
    this.init = init;
    server.on('connection', (s) => this.adopt(s));
    server.on('error', () => {});
  }

  static listen(host: string, port: number, init: TcpInit): Promise<TcpEndpoint> {
    const server = createServer({ noDelay: true });
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => {
        server.close();
        reject(e);
      };
      server.once('error', onError);
      server.listen({ host, port, ipv6Only: isIPv6(host) && host !== '::' }, () => {
        server.off('error', onError);
        resolve(new TcpEndpoint(server, init));
      });
    });
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

  /** Write on connection `connId` if it is open, else on a connection to address:port (opened if needed). */
  send(buf: Buffer, address: string, port: number, connId: number | undefined, cb: (err: Error | null) => void): void {
    if (this.closed) {
      cb(new Error('transport closed'));
      return;
    }
    let conn = connId !== undefined ? this.conns.get(connId) : undefined;
    if (!conn) {
      const id = this.byKey.get(keyOf(address, port));
      conn = id !== undefined ? this.conns.get(id) : undefined;
    }
    if (!conn) {
      const socket = createConnection({ host: plainHost(address), port, noDelay: true });
      socket.once('error', (e) => cb(e));
      conn = this.adopt(socket, keyOf(address, port));
    }
    conn.socket.write(buf, (err) => cb(err ?? null));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.conns.values()) c.socket.destroy();
    this.conns.clear();
    this.byKey.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private adopt(socket: Socket, key?: string): Conn {
    const id = this.nextId++;
    const conn: Conn = {
      id,
      socket,
      key: key ?? keyOf(socket.remoteAddress ?? '', socket.remotePort ?? 0),
      framer: new StreamFramer({ maxMessageSize: this.init.maxMessageBytes }),
    };
    this.conns.set(id, conn);
    this.byKey.set(conn.key, id);
    this.onConnectionCount(this.conns.size);
    socket.setTimeout(this.init.idleMs, () => socket.destroy());
    socket.on('error', () => {});
    socket.on('close', () => {
      this.conns.delete(id);
      if (this.byKey.get(conn.key) === id) this.byKey.delete(conn.key);
      this.onConnectionCount(this.conns.size);
    });
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    return conn;
  }

  private onData(conn: Conn, chunk: Buffer): void {
    const address = conn.socket.remoteAddress ?? '';
    const port = conn.socket.remotePort ?? 0;
    for (const ev of conn.framer.push(chunk)) {
      if (conn.socket.destroyed) return;
      if (ev.kind === 'message') this.messageHandler(ev.result, ev.raw, address, port, conn.id);
      else if (ev.kind === 'ping') conn.socket.write(CRLF);
      else if (ev.kind === 'error') {
        // 18.3: a stream that cannot be framed cannot be resynchronised: close this connection only.
        conn.socket.destroy();
        this.onFramingError(ev.error);
        return;
      }
    }
  }
}

function keyOf(address: string, port: number): string {
  return `${plainHost(address)}|${port}`;
}
