/**
 * A bare SIP phone on one UDP socket that also answers: every request it
 * receives (MESSAGE, NOTIFY) gets 200 OK and is reported with its arrival
 * time, so a benchmark can time a message from one phone to another, or a
 * presence change to the NOTIFY it causes. Requests it sends are written as
 * text and matched to their final response by Call-ID and CSeq, with Timer A
 * retransmissions (RFC 3261 17.1.1.2).
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { getHeader, type SipRequest, type SipResponse } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { buildResponse } from '../../src/sip/response.ts';
import { serialize } from '../../src/sip/serializer.ts';
import type { Dest } from './sip-probe.ts';

export interface Arrival {
  request: SipRequest;
  at: number;
}

export class AnsweringPhone {
  private readonly waiting = new Map<string, (r: SipResponse) => void>();
  private readonly listeners: Array<(a: Arrival) => void> = [];
  private seq = 0;
  readonly arrivals: Arrival[] = [];

  private constructor(
    private readonly sock: Socket,
    readonly port: number,
  ) {
    sock.on('message', (buf, rinfo) => this.onMessage(buf, rinfo.port, rinfo.address));
  }

  static open(): Promise<AnsweringPhone> {
    return new Promise((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => resolve(new AnsweringPhone(s, s.address().port)));
    });
  }

  get hostport(): string {
    return `127.0.0.1:${this.port}`;
  }

  private onMessage(buf: Buffer, port: number, host: string): void {
    const at = performance.now();
    const p = parseMessage(new Uint8Array(buf));
    if (!p.ok) return;
    const m = p.value;
    if (m.kind === 'request') {
      if (m.method === 'ACK') return;
      const resp = buildResponse(m, 200, 'OK', { toTag: randomBytes(4).toString('hex') });
      this.sock.send(Buffer.from(serialize(resp)), port, host);
      const key = `${getHeader(m, 'Call-ID')}|${getHeader(m, 'CSeq')}`;
      // A retransmission is answered again but arrives only once.
      if (this.arrivals.some((a) => `${getHeader(a.request, 'Call-ID')}|${getHeader(a.request, 'CSeq')}` === key))
        return;
      const a = { request: m, at };
      this.arrivals.push(a);
      for (const l of this.listeners) l(a);
      return;
    }
    if (m.status < 200) return;
    const key = `${getHeader(m, 'Call-ID')}|${getHeader(m, 'CSeq')}`;
    const w = this.waiting.get(key);
    this.waiting.delete(key);
    w?.(m);
  }

  /** Resolves with the first request from now on that `match` accepts. */
  next(match: (r: SipRequest) => boolean, timeoutMs = 20_000): Promise<Arrival> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no matching request arrived')), timeoutMs);
      const l = (a: Arrival) => {
        if (!match(a.request)) return;
        clearTimeout(timer);
        this.listeners.splice(this.listeners.indexOf(l), 1);
        resolve(a);
      };
      this.listeners.push(l);
    });
  }

  /** Send a request (text, with `{cseq}` and `{callId}` filled in) and wait for its final response. */
  request(dest: Dest, method: string, build: (ids: Ids) => string, timeoutMs = 15_000): Promise<Answer> {
    const ids: Ids = {
      callId: `${randomBytes(8).toString('hex')}@bench`,
      tag: randomBytes(6).toString('hex'),
      branch: `z9hG4bK${randomBytes(8).toString('hex')}`,
      cseq: `${++this.seq} ${method}`,
      via: `SIP/2.0/UDP ${this.hostport}`,
    };
    const bytes = Buffer.from(build(ids));
    const key = `${ids.callId}|${ids.cseq}`;
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      let interval = 500;
      let timer: NodeJS.Timeout;
      const transmit = () => {
        this.sock.send(bytes, dest.port, dest.host);
        const left = timeoutMs - (performance.now() - t0);
        if (left <= 0) {
          this.waiting.delete(key);
          reject(new Error(`no final response to ${ids.cseq}`));
          return;
        }
        timer = setTimeout(transmit, Math.min(interval, left));
        interval *= 2;
      };
      this.waiting.set(key, (response) => {
        clearTimeout(timer);
        resolve({ status: response.status, sentAt: t0, ms: performance.now() - t0, response });
      });
      transmit();
    });
  }

  register(dest: Dest, user: string, expires = 3600): Promise<Answer> {
    const d = `${dest.host}:${dest.port}`;
    return this.request(
      dest,
      'REGISTER',
      (i) =>
        `REGISTER sip:${d} SIP/2.0\r\nVia: ${i.via};branch=${i.branch};rport\r\nMax-Forwards: 70\r\n` +
        `From: <sip:${user}@${d}>;tag=${i.tag}\r\nTo: <sip:${user}@${d}>\r\nCall-ID: ${i.callId}\r\n` +
        `CSeq: ${i.cseq}\r\nContact: <sip:${user}@${this.hostport}>\r\nExpires: ${expires}\r\nContent-Length: 0\r\n\r\n`,
    );
  }

  message(dest: Dest, from: string, to: string, text: string): Promise<Answer> {
    const d = `${dest.host}:${dest.port}`;
    const body = Buffer.from(text);
    return this.request(
      dest,
      'MESSAGE',
      (i) =>
        `MESSAGE sip:${to}@${d} SIP/2.0\r\nVia: ${i.via};branch=${i.branch};rport\r\nMax-Forwards: 70\r\n` +
        `From: <sip:${from}@${d}>;tag=${i.tag}\r\nTo: <sip:${to}@${d}>\r\nCall-ID: ${i.callId}\r\n` +
        `CSeq: ${i.cseq}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${text}`,
    );
  }

  subscribe(dest: Dest, from: string, to: string, expires = 600): Promise<Answer> {
    const d = `${dest.host}:${dest.port}`;
    return this.request(
      dest,
      'SUBSCRIBE',
      (i) =>
        `SUBSCRIBE sip:${to}@${d} SIP/2.0\r\nVia: ${i.via};branch=${i.branch};rport\r\nMax-Forwards: 70\r\n` +
        `From: <sip:${from}@${d}>;tag=${i.tag}\r\nTo: <sip:${to}@${d}>\r\nCall-ID: ${i.callId}\r\n` +
        `CSeq: ${i.cseq}\r\nContact: <sip:${from}@${this.hostport}>\r\nEvent: presence\r\n` +
        `Accept: application/pidf+xml\r\nExpires: ${expires}\r\nContent-Length: 0\r\n\r\n`,
    );
  }

  close(): Promise<void> {
    return new Promise((r) => this.sock.close(() => r()));
  }
}

export interface Ids {
  callId: string;
  tag: string;
  branch: string;
  cseq: string;
  via: string;
}

export interface Answer {
  status: number;
  sentAt: number;
  ms: number;
  response: SipResponse;
}
