import { createConnection, createServer, isIPv6, type Server, type Socket } from 'node:net';
import { findHeaderEnd, skipLeadingCrlf } from './parser.ts';
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
  buf: Buffer;
}

const CONTENT_LENGTH_RE = /^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)[ \t]*$/im;
const CRLF = Buffer.from('\r\n');

/**
 * Splits a TCP byte stream into SIP messages by Content-Length (RFC 3261 18.3). Returns the frames found and the
 * unconsumed rest, or an error naming what broke the stream (the connection is then closed). A double CRLF
 * between messages is an RFC 5626 section 3.5.1 keep-alive ping and is counted so it can be answered.
 */
export function takeFrames(
  input: Buffer,
  maxBytes: number,
): { frames: Buffer[]; rest: Buffer; pings: number } | { error: string } {
  const frames: Buffer[] = [];
  let pings = 0;
  let at = 0;
  for (;;) {
    const start = skipLeadingCrlf(input, at);
    if (start - at >= 4) pings++;
    at = start;
    if (at >= input.length) return { frames, rest: Buffer.alloc(0), pings };
    const end = findHeaderEnd(input, at);
    if (!end) {
      if (input.length - at > maxBytes) return { error: 'header block too large' };
      return { frames, rest: input.subarray(at), pings };
    }
    const head = input.toString('latin1', at, end.headEnd);
    const m = CONTENT_LENGTH_RE.exec(head);
    if (!m) return { error: 'missing Content-Length on a stream' };
    const len = Number(m[1]);
    const total = end.bodyStart - at + len;
    if (total > maxBytes) return { error: 'message too large' };
    if (end.bodyStart + len > input.length) return { frames, rest: input.subarray(at), pings };
    frames.push(input.subarray(at, end.bodyStart + len));
    at = end.bodyStart + len;
  }
}

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
  private frameHandler: (frame: Buffer, address: string, port: number, connId: number) => void = () => {};
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

  onFrame(fn: (frame: Buffer, address: string, port: number, connId: number) => void): void {
    this.frameHandler = fn;
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
      buf: Buffer.alloc(0),
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
    const input = conn.buf.length === 0 ? chunk : Buffer.concat([conn.buf, chunk]);
    const r = takeFrames(input, this.init.maxMessageBytes);
    if ('error' in r) {
      conn.buf = Buffer.alloc(0);
      conn.socket.destroy();
      this.onFramingError(r.error);
      return;
    }
    // Keep only the unconsumed bytes, copied so a large read buffer is not retained.
    conn.buf = r.rest.length === 0 ? Buffer.alloc(0) : Buffer.from(r.rest);
    for (let i = 0; i < r.pings; i++) conn.socket.write(CRLF);
    const address = conn.socket.remoteAddress ?? '';
    const port = conn.socket.remotePort ?? 0;
    for (const f of r.frames) this.frameHandler(f, address, port, conn.id);
  }
}

function keyOf(address: string, port: number): string {
  return `${plainHost(address)}|${port}`;
}
