/**
 * A scripted phone over one TCP connection that behaves as Linphone does over
 * TCP: its Contact names the ephemeral port of the connection it opened (where
 * nothing listens), every request it sends and every request it expects goes
 * over that one connection (RFC 5923 reuse), it answers INVITEs with 180 and
 * 200 (copying Record-Route, RFC 3261 12.1.1), follows a 302 whose target is
 * the host it is connected to, ACKs and hangs up with BYE along the route set.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { StreamFramer } from '../../src/sip/framing.ts';
import { getHeader, getHeaders, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.ts';

const hex = (n: number) => randomBytes(n).toString('hex');

export interface Dialog {
  callId: string;
  localTag: string;
  remoteTag: string;
  localUri: string;
  remoteUri: string;
  remoteTarget: string;
  /** Route set in the order this side uses it. */
  routes: string[];
  seq: number;
}

export class TcpPhone {
  /** Requests received (the phone as callee), in order. */
  readonly received: SipRequest[] = [];
  /** Responses received, in order. */
  readonly responses: SipResponse[] = [];
  readonly dialogs = new Map<string, Dialog>();
  private readonly framer = new StreamFramer({ maxMessageSize: 65_535 });
  private waiters: Array<{ match: (m: SipMessage) => boolean; resolve: (m: SipMessage) => void }> = [];
  private seq = 1;
  private readonly regCallId = `${hex(6)}@reg`;

  private constructor(
    private readonly sock: Socket,
    readonly user: string,
    /** The adapter's host:port (the phone's domain and outbound connection). */
    readonly server: string,
  ) {
    sock.on('data', (chunk: Buffer) => {
      for (const ev of this.framer.push(chunk)) {
        if (ev.kind === 'message' && ev.result.ok) this.onMessage(ev.result.value);
        else if (ev.kind === 'pong') this.pongs++;
      }
    });
    sock.on('error', () => {});
  }

  static async open(user: string, host: string, port: number): Promise<TcpPhone> {
    const sock = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    return new TcpPhone(sock, user, `${host}:${port}`);
  }

  get localPort(): number {
    return this.sock.localPort ?? 0;
  }

  get localHost(): string {
    return this.sock.localAddress ?? '127.0.0.1';
  }

  /** A Contact URI to write instead (an RFC 5626 UA writes one URI for all its flows, told apart by reg-id). */
  contactUri: string | undefined;

  /** The Contact a TCP Linphone writes: its connection's own (ephemeral) address. */
  get contact(): string {
    return this.contactUri ?? `sip:${this.user}@${this.localHost}:${this.localPort};transport=tcp`;
  }

  get aor(): string {
    return `sip:${this.user}@${this.server}`;
  }

  close(): void {
    this.sock.destroy();
  }

  /** Send a CRLF keep-alive ping (RFC 5626 4.4.1) and resolve when the pong (CRLF) comes back. */
  ping(ms = 5000): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      const before = this.pongs;
      const check = setInterval(() => {
        if (this.pongs > before) {
          clearTimeout(t);
          clearInterval(check);
          resolve(true);
        }
      }, 20);
      t.unref();
      this.sock.write('\r\n\r\n');
    });
  }

  private pongs = 0;

  /** REGISTER over the connection; `contactParams` follow the Contact (e.g. `;+sip.instance=...;reg-id=1`). */
  async register(expires = 600, contactParams = ''): Promise<SipResponse> {
    return this.request(
      [
        `REGISTER sip:${this.server};transport=tcp SIP/2.0`,
        this.via(),
        'Max-Forwards: 70',
        `From: <${this.aor}>;tag=${hex(4)}`,
        `To: <${this.aor}>`,
        `Call-ID: ${this.regCallId}`,
        `CSeq: ${this.seq++} REGISTER`,
        `Contact: <${this.contact}>${contactParams}`,
        `Expires: ${expires}`,
      ],
      'REGISTER',
    );
  }

  /** INVITE `target` through the connection; a 302 naming the host we are connected to is followed (ACKed first). */
  async invite(
    target: string,
    maxRedirects = 3,
  ): Promise<{ final: SipResponse; redirects: string[]; dialog?: Dialog }> {
    const callId = `${hex(8)}@${this.localHost}`;
    const localTag = hex(4);
    let uri = target;
    const redirects: string[] = [];
    for (let hop = 0; ; hop++) {
      const seq = this.seq++;
      const branch = `z9hG4bK${hex(8)}`;
      const sdp = this.sdp();
      const head = [
        `INVITE ${uri} SIP/2.0`,
        this.via(branch),
        'Max-Forwards: 70',
        `From: <${this.aor}>;tag=${localTag}`,
        `To: <${target}>`,
        `Call-ID: ${callId}`,
        `CSeq: ${seq} INVITE`,
        `Contact: <${this.contact}>`,
        'Content-Type: application/sdp',
      ];
      const final = await this.request(head, 'INVITE', sdp, callId);
      if (final.status >= 300 && final.status < 400 && hop < maxRedirects) {
        this.ackNon2xx(head, final);
        const next = /<([^>]+)>/.exec(getHeader(final, 'Contact') ?? '')?.[1];
        if (!next) return { final, redirects };
        redirects.push(next);
        uri = next;
        continue;
      }
      if (final.status < 200 || final.status >= 300) {
        this.ackNon2xx(head, final);
        return { final, redirects };
      }
      const rr = getHeaders(final, 'Record-Route').flatMap((v) => v.split(/,(?=\s*<)/).map((x) => x.trim()));
      const dialog: Dialog = {
        callId,
        localTag,
        remoteTag: /;tag=([^;>\s]+)/.exec(getHeader(final, 'To') ?? '')?.[1] ?? '',
        localUri: this.aor,
        remoteUri: target,
        remoteTarget: /<([^>]+)>/.exec(getHeader(final, 'Contact') ?? '')?.[1] ?? uri,
        // 12.1.2: the UAC's route set is the Record-Route list reversed.
        routes: rr.reverse(),
        seq,
      };
      this.dialogs.set(callId, dialog);
      this.sendInDialog(dialog, 'ACK', seq);
      return { final, redirects, dialog };
    }
  }

  /** Hang up: BYE along the dialog's route set; resolves with the final response. */
  bye(callId: string): Promise<SipResponse> {
    const d = this.dialogs.get(callId);
    if (!d) throw new Error(`no dialog ${callId}`);
    d.seq++;
    this.dialogs.delete(callId);
    return this.sendInDialog(d, 'BYE', d.seq) as Promise<SipResponse>;
  }

  /** Wait for a request of `method` (the phone as callee). */
  waitRequest(method: string, ms = 20_000): Promise<SipRequest> {
    const have = this.received.find((r) => r.method === method && !this.taken.has(r));
    if (have) {
      this.taken.add(have);
      return Promise.resolve(have);
    }
    return this.wait((m) => m.kind === 'request' && m.method === method, ms).then((m) => {
      this.taken.add(m as SipRequest);
      return m as SipRequest;
    });
  }

  private readonly taken = new Set<SipRequest>();

  private sendInDialog(d: Dialog, method: string, seq: number): Promise<SipMessage> | undefined {
    const lines = [
      `${method} ${d.remoteTarget} SIP/2.0`,
      this.via(),
      'Max-Forwards: 70',
      `From: <${d.localUri}>;tag=${d.localTag}`,
      `To: <${d.remoteUri}>;tag=${d.remoteTag}`,
      `Call-ID: ${d.callId}`,
      `CSeq: ${seq} ${method}`,
      ...d.routes.map((r) => `Route: ${r}`),
    ];
    if (method === 'ACK') {
      this.write(lines);
      return undefined;
    }
    return this.request(lines, method, undefined, d.callId);
  }

  private ackNon2xx(inviteHead: string[], resp: SipResponse): void {
    // 17.1.1.3: same Request-URI, top Via, Call-ID, From; To of the response; CSeq number with ACK.
    const [start, via, , from, , callId, cseq] = inviteHead;
    this.write([
      start.replace(/^INVITE/, 'ACK'),
      via,
      'Max-Forwards: 70',
      from,
      `To: ${getHeader(resp, 'To')}`,
      callId,
      cseq.replace(/INVITE$/, 'ACK'),
    ]);
  }

  private request(head: string[], method: string, body?: string, callId?: string): Promise<SipResponse> {
    const id = callId ?? /^Call-ID: (.*)$/m.exec(head.join('\n'))?.[1];
    const seq = /^CSeq: (\d+)/m.exec(head.join('\n'))?.[1];
    const p = this.wait(
      (m) =>
        m.kind === 'response' &&
        m.status >= 200 &&
        getHeader(m, 'Call-ID') === id &&
        getHeader(m, 'CSeq') === `${seq} ${method}`,
      30_000,
    );
    this.write(head, body);
    return p as Promise<SipResponse>;
  }

  private wait(match: (m: SipMessage) => boolean, ms: number): Promise<SipMessage> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.user}: nothing matching arrived in ${ms} ms`)), ms);
      this.waiters.push({
        match,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
      });
    });
  }

  private onMessage(m: SipMessage): void {
    if (m.kind === 'response') this.responses.push(m);
    else {
      this.received.push(m);
      this.answer(m);
    }
    const i = this.waiters.findIndex((w) => w.match(m));
    if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
  }

  /** As callee: 180 then 200 with SDP for INVITE (the dialog remembered), 200 for BYE; ACK needs no answer. */
  private answer(req: SipRequest): void {
    if (req.method === 'ACK') return;
    const copy = ['Via', 'From', 'To', 'Call-ID', 'CSeq'];
    const tag = hex(4);
    const base = (status: string, withTag: boolean) => {
      const lines = [`SIP/2.0 ${status}`];
      for (const h of req.headers) {
        if (!copy.includes(h.name) && !copy.some((c) => c.toLowerCase() === h.name.toLowerCase())) continue;
        const value =
          withTag && h.name.toLowerCase() === 'to' && !/;tag=/.test(h.value) ? `${h.value};tag=${tag}` : h.value;
        lines.push(`${h.name}: ${value}`);
      }
      return lines;
    };
    if (req.method === 'INVITE') {
      const rr = getHeaders(req, 'Record-Route');
      this.write([...base('180 Ringing', true), ...rr.map((v) => `Record-Route: ${v}`), `Contact: <${this.contact}>`]);
      this.write(
        [
          ...base('200 OK', true),
          ...rr.map((v) => `Record-Route: ${v}`),
          `Contact: <${this.contact}>`,
          'Content-Type: application/sdp',
        ],
        this.sdp(),
      );
      const callId = getHeader(req, 'Call-ID') ?? '';
      this.dialogs.set(callId, {
        callId,
        localTag: tag,
        remoteTag: /;tag=([^;>\s]+)/.exec(getHeader(req, 'From') ?? '')?.[1] ?? '',
        localUri: /<([^>]+)>/.exec(getHeader(req, 'To') ?? '')?.[1] ?? '',
        remoteUri: /<([^>]+)>/.exec(getHeader(req, 'From') ?? '')?.[1] ?? '',
        remoteTarget: /<([^>]+)>/.exec(getHeader(req, 'Contact') ?? '')?.[1] ?? '',
        // 12.1.1: the UAS's route set is the Record-Route list in order.
        routes: rr.flatMap((v) => v.split(/,(?=\s*<)/).map((x) => x.trim())),
        seq: 1000,
      });
      return;
    }
    if (req.method === 'BYE') this.dialogs.delete(getHeader(req, 'Call-ID') ?? '');
    this.write(base('200 OK', false));
  }

  private via(branch = `z9hG4bK${hex(8)}`): string {
    return `Via: SIP/2.0/TCP ${this.localHost}:${this.localPort};branch=${branch};rport;alias`;
  }

  private sdp(): string {
    return [
      'v=0',
      `o=${this.user} 1 1 IN IP4 ${this.localHost}`,
      's=-',
      `c=IN IP4 ${this.localHost}`,
      't=0 0',
      'm=audio 40000 RTP/AVP 0',
      '',
    ].join('\r\n');
  }

  private write(lines: string[], body = ''): void {
    const bytes = Buffer.from(body);
    this.sock.write(`${lines.join('\r\n')}\r\nContent-Length: ${bytes.length}\r\n\r\n${body}`);
  }
}
