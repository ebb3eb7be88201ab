/**
 * Many SIP requests from one UDP socket, as a crowd of phones behind one
 * address would send them: each request is sent once (no retransmission,
 * so a burst stays a burst), answers are matched by Call-ID, provisional
 * ones skipped, and a non-2xx final answer to an INVITE is acknowledged
 * (RFC 3261 17.1.1.3) so the server stops resending it.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { getHeader, getHeaders } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';

export interface BurstRequest {
  method: 'REGISTER' | 'INVITE';
  /** Request-URI. */
  uri: string;
  /** User in From (and in To and Contact for a REGISTER). */
  from: string;
  /** To URI (default: the Request-URI). */
  to?: string;
  /** Extra header lines (`Name: value`). */
  headers?: string[];
}

export interface BurstAnswer {
  status: number;
  reason: string;
  contacts: string[];
  retryAfter?: number;
}

interface Pending {
  req: BurstRequest;
  branch: string;
  tag: string;
  resolve: (a: BurstAnswer | null) => void;
  timer: NodeJS.Timeout;
}

export class SipBurst {
  private readonly pending = new Map<string, Pending>();
  private constructor(
    private readonly sock: Socket,
    private readonly host: string,
    private readonly port: number,
  ) {
    sock.on('message', (buf) => this.onMessage(buf));
  }

  /** A client bound to `bindHost` (any port) sending to `dest` (`host:port`). */
  static async open(dest: string, bindHost = '127.0.0.1'): Promise<SipBurst> {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, bindHost, r));
    // A burst of thousands of answers must not be lost in the socket's own buffer.
    sock.setRecvBufferSize(8 * 1024 * 1024);
    const i = dest.lastIndexOf(':');
    return new SipBurst(sock, dest.slice(0, i), Number(dest.slice(i + 1)));
  }

  get local(): string {
    const a = this.sock.address();
    return `${a.address}:${a.port}`;
  }

  /** Send one request; resolves with its final answer, or null when none came within `timeoutMs`. */
  send(req: BurstRequest, timeoutMs = 30_000): Promise<BurstAnswer | null> {
    const callId = `${randomBytes(10).toString('hex')}@burst`;
    const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
    const tag = randomBytes(4).toString('hex');
    const local = this.local;
    const host = local.slice(0, local.lastIndexOf(':'));
    const to = req.to ?? (req.method === 'REGISTER' ? `sip:${req.from}@${host}` : req.uri);
    const text = [
      `${req.method} ${req.uri} SIP/2.0`,
      `Via: SIP/2.0/UDP ${local};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:${req.from}@${host}>;tag=${tag}`,
      `To: <${to}>`,
      `Call-ID: ${callId}`,
      `CSeq: 1 ${req.method}`,
      `Contact: <sip:${req.from}@${local}>`,
      ...(req.method === 'REGISTER' ? ['Expires: 3600'] : []),
      ...(req.headers ?? []),
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(callId);
        resolve(null);
      }, timeoutMs);
      this.pending.set(callId, { req, branch, tag, resolve, timer });
      this.sock.send(text, this.port, this.host);
    });
  }

  close(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve(null);
    }
    this.pending.clear();
    this.sock.close();
  }

  private onMessage(buf: Buffer): void {
    const m = parseMessage(buf);
    if (!m.ok || m.value.kind !== 'response' || m.value.status < 200) return;
    const resp = m.value;
    const callId = getHeader(resp, 'Call-ID') ?? '';
    const p = this.pending.get(callId);
    if (!p) return;
    this.pending.delete(callId);
    clearTimeout(p.timer);
    if (p.req.method === 'INVITE' && resp.status >= 300) {
      const local = this.local;
      const host = local.slice(0, local.lastIndexOf(':'));
      const ack = [
        `ACK ${p.req.uri} SIP/2.0`,
        `Via: SIP/2.0/UDP ${local};branch=${p.branch};rport`,
        'Max-Forwards: 70',
        `From: <sip:${p.req.from}@${host}>;tag=${p.tag}`,
        `To: ${getHeader(resp, 'To')}`,
        `Call-ID: ${callId}`,
        'CSeq: 1 ACK',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      this.sock.send(ack, this.port, this.host);
    }
    const ra = getHeader(resp, 'Retry-After');
    p.resolve({
      status: resp.status,
      reason: resp.reason,
      contacts: getHeaders(resp, 'Contact'),
      ...(ra !== undefined && /^\d+/.test(ra) ? { retryAfter: Number.parseInt(ra, 10) } : {}),
    });
  }
}
