/**
 * A scripted phone over UDP for attack and authentication tests: one socket,
 * requests written out in full (any From, To, Contact, extra headers), the
 * final answer returned whole; `withDigest` answers a 401/407 challenge the
 * way a phone does (RFC 3261 22.2) and sends the request again.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { digestAuthorization } from '../../src/sip/digest.ts';
import { getHeader, getHeaders, type SipResponse } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';

export interface ClientRequest {
  method: string;
  uri: string;
  from: string;
  to?: string;
  contact?: string;
  callId?: string;
  cseq?: number;
  expires?: number;
  headers?: string[];
}

export class SipClient {
  /** Requests that arrived on this socket (the client as a callee), first lines and all. */
  readonly received: string[] = [];

  private constructor(
    private readonly sock: Socket,
    readonly port: number,
    private readonly target: number,
  ) {
    sock.on('message', (buf) => {
      const text = buf.toString();
      if (!text.startsWith('SIP/2.0')) this.received.push(text);
    });
  }

  static async open(targetPort: number): Promise<SipClient> {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    return new SipClient(sock, sock.address().port, targetPort);
  }

  close(): void {
    this.sock.close();
  }

  /** The request as wire text (also what a test replays byte for byte). */
  build(r: ClientRequest, branch = `z9hG4bK${randomBytes(8).toString('hex')}`): string {
    const callId = r.callId ?? `${randomBytes(8).toString('hex')}@client`;
    const lines = [
      `${r.method} ${r.uri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <${r.from}>;tag=${randomBytes(4).toString('hex')}`,
      `To: <${r.to ?? r.uri}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${r.cseq ?? 1} ${r.method}`,
    ];
    if (r.contact) lines.push(`Contact: ${r.contact}`);
    if (r.expires !== undefined) lines.push(`Expires: ${r.expires}`);
    lines.push(...(r.headers ?? []), 'Content-Length: 0', '', '');
    return lines.join('\r\n');
  }

  /** Send wire text and resolve with the final response to it (matched by branch). */
  sendRaw(text: string, timeoutMs = 20_000): Promise<SipResponse> {
    const branch = /branch=([^;\r\n]+)/.exec(text)?.[1];
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.sock.off('message', on);
        reject(new Error(`no final answer to ${text.split('\r\n')[0]}`));
      }, timeoutMs);
      const on = (buf: Buffer) => {
        const m = parseMessage(buf);
        if (!m.ok || m.value.kind !== 'response' || m.value.status < 200) return;
        if (!getHeader(m.value, 'Via')?.includes(`branch=${branch}`)) return;
        clearTimeout(timer);
        this.sock.off('message', on);
        const resp = m.value;
        if (text.startsWith('INVITE ') && resp.status >= 300) this.ack(text, resp);
        resolve(resp);
      };
      this.sock.on('message', on);
      this.sock.send(text, this.target, '127.0.0.1');
    });
  }

  request(r: ClientRequest): Promise<SipResponse> {
    return this.sendRaw(this.build(r));
  }

  /** Send; on 401/407 answer the first (SHA-256) challenge with `user`/`password` and send again (CSeq + 1). */
  async withDigest(
    r: ClientRequest,
    user: string,
    password: string,
  ): Promise<{ first: SipResponse; final: SipResponse; text: string }> {
    const callId = r.callId ?? `${randomBytes(8).toString('hex')}@client`;
    const first = await this.request({ ...r, callId });
    if (first.status !== 401 && first.status !== 407) return { first, final: first, text: '' };
    const challenge = getHeaders(first, first.status === 401 ? 'WWW-Authenticate' : 'Proxy-Authenticate')[0];
    const value = digestAuthorization(challenge, { user, password, method: r.method, uri: r.uri });
    const name = first.status === 401 ? 'Authorization' : 'Proxy-Authorization';
    const text = this.build({
      ...r,
      callId,
      cseq: (r.cseq ?? 1) + 1,
      headers: [...(r.headers ?? []), `${name}: ${value}`],
    });
    return { first, final: await this.sendRaw(text), text };
  }

  /** RFC 3261 17.1.1.3: the ACK for a non-2xx final response to an INVITE. */
  private ack(invite: string, resp: SipResponse): void {
    const get = (n: string) => new RegExp(`^${n}: (.*)$`, 'm').exec(invite)?.[1] ?? '';
    const uri = invite.split(' ')[1];
    const cseq = get('CSeq').split(' ')[0];
    const text = [
      `ACK ${uri} SIP/2.0`,
      `Via: ${get('Via')}`,
      'Max-Forwards: 70',
      `From: ${get('From')}`,
      `To: ${getHeader(resp, 'To') ?? get('To')}`,
      `Call-ID: ${get('Call-ID')}`,
      `CSeq: ${cseq} ACK`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    this.sock.send(text, this.target, '127.0.0.1');
  }
}
