/**
 * A bare SIP phone for timing the phone-facing transports: requests written
 * as text and sent over UDP, TLS (RFC 3261 26.2, Content-Length framing) or
 * WSS (RFC 7118, one message per WebSocket message, subprotocol `sip`); the
 * final response is matched by Call-ID and CSeq, 1xx skipped. A callee phone
 * (`answer`) answers every INVITE with 200 and an SDP at once, over UDP.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import * as tls from 'node:tls';
import WebSocket from 'ws';
import { getHeader, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { buildResponse } from '../../src/sip/response.ts';
import { serialize } from '../../src/sip/serializer.ts';
import { StreamFramer } from '../../src/sip/framing.ts';

export type PhoneTransport = 'UDP' | 'TLS' | 'WSS';

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n';

export class StreamPhone {
  private readonly waiting = new Map<string, (r: SipResponse) => void>();
  private seq = 0;
  private tlsSock?: tls.TLSSocket;
  private ws?: WebSocket;
  private constructor(
    readonly transport: PhoneTransport,
    private readonly udp: Socket,
    readonly udpPort: number,
  ) {
    udp.on('message', (buf) => this.onMessage(parseMessage(buf), undefined));
  }

  /** A phone talking to its adapter over `transport` at `port` (UDP: the adapter's SIP port). */
  static async open(transport: PhoneTransport, port: number): Promise<StreamPhone> {
    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    const p = new StreamPhone(transport, udp, udp.address().port);
    if (transport === 'TLS') await p.connectTls(port);
    if (transport === 'WSS') {
      const ws = new WebSocket(`wss://127.0.0.1:${port}`, 'sip', { rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.on('message', (d: Buffer) => p.onMessage(parseMessage(Buffer.from(d)), undefined));
      p.ws = ws;
    }
    return p;
  }

  /** A new TLS connection to `port` (the old one closed); resolves once the handshake is done. */
  connectTls(port: number): Promise<void> {
    this.tlsSock?.destroy();
    const framer = new StreamFramer({ maxMessageSize: 65_535 });
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    s.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) if (ev.kind === 'message') this.onMessage(ev.result, undefined);
    });
    s.on('error', () => {});
    this.tlsSock = s;
    return new Promise((resolve, reject) => {
      s.once('secureConnect', () => resolve());
      s.once('error', reject);
    });
  }

  private get via(): string {
    const t = this.transport;
    const host =
      t === 'WSS' ? 'phone.invalid' : `127.0.0.1:${t === 'TLS' ? (this.tlsSock?.localPort ?? 0) : this.udpPort}`;
    return `SIP/2.0/${t} ${host};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`;
  }

  /** The Contact: over UDP the socket itself; otherwise the flow (the adapter reaches us over our connection). */
  private contact(user: string): string {
    if (this.transport === 'UDP') return `<sip:${user}@127.0.0.1:${this.udpPort}>`;
    return `<sip:${user}@phone.invalid;transport=${this.transport.toLowerCase()}>`;
  }

  register(adapterPort: number, user: string, callId = `${user}-reg@bench`): Promise<SipResponse> {
    this.seq++;
    return this.send(
      [
        `REGISTER sip:127.0.0.1:${adapterPort} SIP/2.0`,
        `Via: ${this.via}`,
        'Max-Forwards: 70',
        `From: <sip:${user}@127.0.0.1>;tag=${randomBytes(4).toString('hex')}`,
        `To: <sip:${user}@127.0.0.1>`,
        `Call-ID: ${callId}`,
        `CSeq: ${this.seq} REGISTER`,
        `Contact: ${this.contact(user)}`,
        'Expires: 600',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
      callId,
      `${this.seq} REGISTER`,
    );
  }

  /** INVITE `callee` at the adapter; resolves with the final response. */
  /** With `to`, the INVITE goes to `to.uri`: over UDP to `to.udpPort` when given, else over this phone's transport. */
  invite(
    adapterPort: number,
    caller: string,
    callee: string,
    to?: { uri: string; udpPort?: number },
  ): Promise<SipResponse> {
    this.seq++;
    const callId = `${randomBytes(8).toString('hex')}@bench`;
    const uri = to?.uri ?? `sip:${callee}@127.0.0.1:${adapterPort}`;
    const text = [
      `INVITE ${uri} SIP/2.0`,
      `Via: ${to?.udpPort ? `SIP/2.0/UDP 127.0.0.1:${this.udpPort};branch=z9hG4bK${randomBytes(6).toString('hex')};rport` : this.via}`,
      'Max-Forwards: 70',
      `From: <sip:${caller}@127.0.0.1>;tag=${randomBytes(4).toString('hex')}`,
      `To: <sip:${callee}@127.0.0.1>`,
      `Call-ID: ${callId}`,
      `CSeq: ${this.seq} INVITE`,
      `Contact: ${this.contact(caller)}`,
      'Content-Type: application/sdp',
      `Content-Length: ${SDP.length}`,
      '',
      SDP,
    ].join('\r\n');
    return this.send(text, callId, `${this.seq} INVITE`, to?.udpPort);
  }

  private send(text: string, callId: string, cseq: string, udpPort?: number): Promise<SipResponse> {
    const key = `${callId}|${cseq}`;
    const done = new Promise<SipResponse>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error(`no answer to ${cseq}`));
      }, 10_000);
      this.waiting.set(key, (r) => {
        clearTimeout(t);
        resolve(r);
      });
    });
    const buf = Buffer.from(text, 'latin1');
    if (udpPort !== undefined || this.transport === 'UDP') this.udp.send(buf, udpPort ?? this.adapterUdp, '127.0.0.1');
    else if (this.transport === 'TLS') this.tlsSock?.write(buf);
    else this.ws?.send(text);
    return done;
  }

  /** The adapter's UDP port (UDP phones). */
  adapterUdp = 0;

  private onMessage(r: { ok: true; value: SipMessage } | { ok: false; error: string }, _: undefined): void {
    if (!r.ok || r.value.kind !== 'response' || r.value.status < 200) return;
    const key = `${getHeader(r.value, 'Call-ID')}|${getHeader(r.value, 'CSeq')}`;
    const w = this.waiting.get(key);
    if (!w) return;
    this.waiting.delete(key);
    w(r.value);
  }

  close(): void {
    this.udp.close();
    this.tlsSock?.destroy();
    this.ws?.terminate();
  }
}

/** A callee phone on UDP answering every INVITE with 200 and an SDP; `registered` once its REGISTER got a 200. */
export async function answeringPhone(
  adapterPort: number,
  user: string,
): Promise<{ port: number; sock: Socket; registered: Promise<void> }> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const port = sock.address().port;
  let ok: () => void = () => {};
  const registered = new Promise<void>((r) => (ok = r));
  sock.on('message', (buf, rinfo) => {
    const m = parseMessage(buf);
    if (m.ok && m.value.kind === 'response' && m.value.status === 200) ok();
    if (!m.ok || m.value.kind !== 'request' || m.value.method !== 'INVITE') return;
    const resp = buildResponse(m.value as SipRequest, 200, 'OK', {
      toTag: randomBytes(4).toString('hex'),
      headers: [
        { name: 'Contact', value: `<sip:callee@127.0.0.1:${sock.address().port}>` },
        { name: 'Content-Type', value: 'application/sdp' },
      ],
      body: new Uint8Array(Buffer.from(SDP)),
    });
    sock.send(serialize(resp), rinfo.port, rinfo.address);
  });
  const register = [
    `REGISTER sip:127.0.0.1:${adapterPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
    'Max-Forwards: 70',
    `From: <sip:${user}@127.0.0.1>;tag=1`,
    `To: <sip:${user}@127.0.0.1>`,
    `Call-ID: ${user}-reg@bench`,
    'CSeq: 1 REGISTER',
    `Contact: <sip:${user}@127.0.0.1:${port}>`,
    'Expires: 600',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  sock.send(Buffer.from(register), adapterPort, '127.0.0.1');
  return { port, sock, registered };
}
