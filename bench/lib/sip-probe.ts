/**
 * A bare SIP phone on one UDP socket, for timing exactly what the seed timed
 * (seed 000 VI.2: "from after a SIP INVITE is sent by the SIP client, till
 * when it receives the SIP/2.0 302"). Requests are written as text; the
 * final response is matched by Call-ID and CSeq (RFC 3261 17.1.3 would use
 * the branch; one request per Call-ID makes these equivalent here), 1xx are
 * skipped, and Timer A retransmissions run (17.1.1.2) until the timeout.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { digestAuthorization } from '../../src/sip/digest.ts';
import { getHeader, getHeaders, type SipResponse } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';

export interface Dest {
  host: string;
  port: number;
}

export interface ProbeAnswer {
  status: number;
  ms: number;
  response: SipResponse;
}

interface Waiting {
  resolve: (r: SipResponse) => void;
}

const T1 = 500;

/** A phone's remembered challenge, reused with a growing nonce-count until the server says stale. */
export interface DigestCache {
  challenge?: string;
  nc: number;
  proxy: boolean;
}

export class SipProbe {
  private readonly waiting = new Map<string, Waiting>();
  private seq = 0;
  /** Datagrams that were not a SIP response we wait for. */
  ignored = 0;

  private constructor(
    private readonly sock: Socket,
    readonly port: number,
  ) {
    sock.on('message', (buf) => this.onMessage(buf));
  }

  static open(host = '127.0.0.1'): Promise<SipProbe> {
    return new Promise((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind(0, host, () => resolve(new SipProbe(s, s.address().port)));
    });
  }

  get hostport(): string {
    return `127.0.0.1:${this.port}`;
  }

  private onMessage(buf: Buffer): void {
    const p = parseMessage(new Uint8Array(buf));
    if (!p.ok || p.value.kind !== 'response') {
      this.ignored++;
      return;
    }
    const r = p.value;
    if (r.status < 200) return;
    const key = `${getHeader(r, 'Call-ID')}|${getHeader(r, 'CSeq')}`;
    const w = this.waiting.get(key);
    if (!w) {
      this.ignored++;
      return;
    }
    this.waiting.delete(key);
    w.resolve(r);
  }

  /** Send `text` and wait for its final response. */
  send(dest: Dest, text: string, callId: string, cseq: string, timeoutMs = 10_000): Promise<ProbeAnswer> {
    const key = `${callId}|${cseq}`;
    const bytes = Buffer.from(text);
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      let interval = T1;
      let timer: NodeJS.Timeout;
      const transmit = () => {
        this.sock.send(bytes, dest.port, dest.host);
        const left = timeoutMs - (performance.now() - t0);
        if (left <= 0) {
          this.waiting.delete(key);
          reject(new Error(`no final response to ${cseq} within ${timeoutMs} ms`));
          return;
        }
        timer = setTimeout(transmit, Math.min(interval, left));
        interval *= 2;
      };
      this.waiting.set(key, {
        resolve: (response) => {
          clearTimeout(timer);
          resolve({ status: response.status, ms: performance.now() - t0, response });
        },
      });
      transmit();
    });
  }

  private ids() {
    const tag = randomBytes(6).toString('hex');
    return {
      callId: `${randomBytes(8).toString('hex')}@bench`,
      tag,
      branch: `z9hG4bK${randomBytes(8).toString('hex')}`,
    };
  }

  /** REGISTER `user` at the adapter, with this probe as the contact; `extra` header lines (CRLF-terminated). */
  register(dest: Dest, user: string, o: { extra?: string; callId?: string } = {}): Promise<ProbeAnswer> {
    const ids = this.ids();
    const { tag, branch } = ids;
    const callId = o.callId ?? ids.callId;
    const cseq = `${++this.seq} REGISTER`;
    const d = `${dest.host}:${dest.port}`;
    const text =
      `REGISTER sip:${d} SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP ${this.hostport};branch=${branch};rport\r\n` +
      'Max-Forwards: 70\r\n' +
      `From: <sip:${user}@${d}>;tag=${tag}\r\n` +
      `To: <sip:${user}@${d}>\r\n` +
      `Call-ID: ${callId}\r\n` +
      `CSeq: ${cseq}\r\n` +
      `Contact: <sip:${user}@${this.hostport}>\r\n` +
      'Expires: 3600\r\n' +
      (o.extra ?? '') +
      'Content-Length: 0\r\n\r\n';
    return this.send(dest, text, callId, cseq);
  }

  /**
   * A request answered the way a phone with a password answers a 401/407 (RFC 3261 22.2): with `cached`
   * credentials (a challenge seen before, its nonce-count advanced) sent at once, else after the challenge.
   * The time is from the first send to the final answer.
   */
  async withDigest(
    send: (extra: string | undefined) => Promise<ProbeAnswer>,
    c: { user: string; password: string; method: string; uri: string; cache?: DigestCache },
  ): Promise<ProbeAnswer> {
    const t0 = performance.now();
    const header = (challenge: string, nc: number, proxy: boolean) =>
      `${proxy ? 'Proxy-Authorization' : 'Authorization'}: ${digestAuthorization(challenge, { ...c, nc })}\r\n`;
    let ans: ProbeAnswer | undefined;
    if (c.cache?.challenge) {
      c.cache.nc++;
      ans = await send(header(c.cache.challenge, c.cache.nc, c.cache.proxy));
    }
    if (!ans || ans.status === 401 || ans.status === 407) {
      ans = await send(undefined);
      if (ans.status === 401 || ans.status === 407) {
        const proxy = ans.status === 407;
        const challenge = getHeaders(ans.response, proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate')[0];
        if (c.cache) Object.assign(c.cache, { challenge, nc: 1, proxy });
        ans = await send(header(challenge, 1, proxy));
      }
    }
    return { ...ans, ms: performance.now() - t0 };
  }

  /** INVITE sip:to@adapter as `from`; a final non-2xx is ACKed (17.1.1.3). Resolves at the final response. */
  async invite(
    dest: Dest,
    from: string,
    to: string,
    o: { extra?: string; callId?: string } = {},
  ): Promise<ProbeAnswer & { contact?: string }> {
    const ids = this.ids();
    const { tag, branch } = ids;
    const callId = o.callId ?? ids.callId;
    const n = ++this.seq;
    const d = `${dest.host}:${dest.port}`;
    const via = `Via: SIP/2.0/UDP ${this.hostport};branch=${branch};rport\r\n`;
    const fromH = `From: <sip:${from}@${d}>;tag=${tag}\r\n`;
    const text =
      `INVITE sip:${to}@${d} SIP/2.0\r\n${via}Max-Forwards: 70\r\n${fromH}` +
      `To: <sip:${to}@${d}>\r\nCall-ID: ${callId}\r\nCSeq: ${n} INVITE\r\n` +
      `Contact: <sip:${from}@${this.hostport}>\r\n${o.extra ?? ''}Content-Length: 0\r\n\r\n`;
    const ans = await this.send(dest, text, callId, `${n} INVITE`);
    if (ans.status >= 300) {
      const to2 = getHeader(ans.response, 'To') ?? `<sip:${to}@${d}>`;
      const ack =
        `ACK sip:${to}@${d} SIP/2.0\r\n${via}Max-Forwards: 70\r\n${fromH}` +
        `To: ${to2}\r\nCall-ID: ${callId}\r\nCSeq: ${n} ACK\r\nContent-Length: 0\r\n\r\n`;
      this.sock.send(Buffer.from(ack), dest.port, dest.host);
    }
    return { ...ans, contact: getHeaders(ans.response, 'Contact')[0] };
  }

  close(): Promise<void> {
    this.waiting.clear();
    return new Promise((r) => this.sock.close(() => r()));
  }
}
