import { isIP } from 'node:net';
import { OverlayError } from '../util/errors.ts';
import { type IncomingRequest, newToken, type SipElement } from './element.ts';
import { getTag, getTo, parseContacts, splitTopLevel } from './header-values.ts';
import { getHeader, getHeaders, type Header, type SipRequest, type SipResponse, type SipUri } from './message.ts';
import { DEFAULT_TIMERS } from './timers.ts';
import { type Peer, plainHost, type TransportName, transportOf } from './transport.ts';

/** A confirmed dialog (12): what a BYE needs. */
export interface Call {
  callId: string;
  localTag: string;
  remoteTag: string;
  localUri: string;
  remoteUri: string;
  /** Remote target from the Contact of the 2xx (12.1.2). */
  remoteTarget: string;
  dest: Peer;
  localSeq: number;
  /** The peer's SDP answer or offer. */
  remoteSdp: string;
  /** Where the INVITE that set up the call was finally sent (after following redirects). */
  redirectedTo?: string;
  /** Route set (12.1.2: the 2xx's Record-Route values reversed); in-dialog requests go to its first hop. */
  routes?: string[];
}

export interface UserAgentInit {
  user: string;
  /** Domain of the address-of-record (default: the element's host). */
  domain?: string;
  transport?: TransportName;
  /** Answer incoming INVITEs with 180 then 200 + SDP (default true). */
  autoAnswer?: boolean;
}

/** Where a SIP URI with a literal IP host points (RFC 3263 DNS is not done: literal addresses only). */
export function peerOf(uri: SipUri, fallback: TransportName = 'UDP'): Peer | undefined {
  const host = plainHost(uri.host);
  if (isIP(host) === 0) return undefined;
  // A sips: URI is reached over TLS (RFC 3261 26.2.2, RFC 5630 section 3); WS/WSS contacts only over their flow.
  const t = transportOf(uri.params.find(([k]) => k === 'transport')?.[1]);
  const transport: TransportName = uri.scheme === 'sips' && (t === undefined || t === 'TCP') ? 'TLS' : (t ?? fallback);
  return { transport, address: host, port: uri.port ?? (transport === 'TLS' ? 5061 : 5060) };
}

/**
 * A small SIP user agent on a SipElement: REGISTER, INVITE that follows 3xx redirects (8.1.3.4) and completes
 * with ACK (13.2.2.4), BYE (15.1), and answering INVITEs with 200 + SDP, retransmitting the 2xx until the ACK
 * (13.3.1.4). Used by tests and the demo; enough of RFC 3261 for a call, not a full phone.
 */
export class UserAgent {
  readonly element: SipElement;
  readonly user: string;
  readonly domain: string;
  readonly transport: TransportName;
  readonly calls = new Map<string, Call>();
  /** INVITEs received (before answering), for tests and the demo. */
  readonly incoming: Array<{ request: SipRequest; source: Peer }> = [];
  private readonly autoAnswer: boolean;
  private seq = 1;
  private readonly callIdBase = newToken(6);
  private regCallId = `${newToken(8)}@reg`;
  private regSeq = 0;
  private readonly awaitingAck = new Map<string, () => void>();
  /** Call-IDs of calls this UA answered (for BYE matching, 15.1.2). */
  private readonly answered = new Set<string>();

  constructor(components: { element: SipElement }, init: UserAgentInit) {
    this.element = components.element;
    this.user = init.user;
    this.domain = init.domain ?? this.element.hostport.replace(/:\d+$/, '');
    this.transport = init.transport ?? 'UDP';
    this.autoAnswer = init.autoAnswer ?? true;
    this.element.handle({
      onRequest: (inc) => this.onRequest(inc),
      onAck: (req) => this.awaitingAck.get(getHeader(req, 'Call-ID') ?? '')?.(),
    });
  }

  get aor(): string {
    return `sip:${this.user}@${this.domain}`;
  }

  get contactUri(): string {
    const t = this.transport === 'TCP' ? ';transport=tcp' : '';
    return `sip:${this.user}@${this.element.hostport}${t}`;
  }

  /** REGISTER this UA's contact for its AOR at `registrar` (10.2). Resolves with the final response. */
  register(registrar: Peer, expires = 3600): Promise<SipResponse> {
    this.regSeq++;
    const req = this.build('REGISTER', `sip:${this.domain}`, {
      callId: this.regCallId,
      seq: this.regSeq,
      from: `<${this.aor}>;tag=${newToken(6)}`,
      to: `<${this.aor}>`,
      extra: [
        { name: 'Contact', value: `<${this.contactUri}>` },
        { name: 'Expires', value: String(expires) },
      ],
    });
    return this.final(req, registrar);
  }

  /**
   * INVITE `target` through `dest`; a 3xx is followed to its first Contact (8.1.3.4), up to `maxRedirects` times.
   * Resolves with the established call, rejects with an OverlayError carrying the final status otherwise.
   */
  async invite(target: string, dest: Peer, maxRedirects = 3): Promise<Call> {
    const callId = `${this.callIdBase}-${this.seq}@${this.element.hostport}`;
    const localTag = newToken(6);
    let uri = target;
    let next = dest;
    let redirectedTo: string | undefined;
    for (let hop = 0; ; hop++) {
      const seq = this.seq++;
      const req = this.build('INVITE', uri, {
        callId,
        seq,
        from: `<${this.aor}>;tag=${localTag}`,
        to: `<${target}>`,
        extra: [
          { name: 'Contact', value: `<${this.contactUri}>` },
          { name: 'Content-Type', value: 'application/sdp' },
        ],
        body: Buffer.from(this.sdp()),
      });
      const resp = await this.final(req, next);
      if (resp.status >= 300 && resp.status < 400 && hop < maxRedirects) {
        // 8.1.3.4: "the client SHOULD use the Contact URIs in the 3xx response to retarget the request".
        const contacts = parseContacts(resp);
        const first = contacts.ok && contacts.value !== '*' ? contacts.value[0] : undefined;
        const peer = first ? peerOf(first.uri, this.transport) : undefined;
        if (!first || !peer) throw new OverlayError('CALLEE_UNREACHABLE', 'redirect without a usable Contact');
        uri = getHeader(resp, 'Contact')?.match(/<([^>]+)>/)?.[1] ?? uri;
        next = peer;
        redirectedTo = uri;
        continue;
      }
      if (resp.status < 200 || resp.status >= 300)
        throw new OverlayError(
          resp.status === 404 ? 'USER_UNKNOWN' : 'CALLEE_UNREACHABLE',
          `${resp.status} ${resp.reason}`,
        );
      const to = getTo(resp);
      const routes = getHeaders(resp, 'Record-Route')
        .flatMap((v) => splitTopLevel(v, ','))
        .reverse();
      const contact = parseContacts(resp);
      const remoteTarget = contact.ok && contact.value !== '*' ? contact.value[0]?.uri : undefined;
      const targetText = getHeader(resp, 'Contact')?.match(/<([^>]+)>/)?.[1] ?? uri;
      const call: Call = {
        callId,
        localTag,
        remoteTag: (to.ok ? getTag(to.value) : undefined) ?? '',
        localUri: this.aor,
        remoteUri: target,
        remoteTarget: targetText,
        // 12.2.1.1: with a route set, requests in the dialog go to the element that record-routed (the hop the
        // INVITE went to), carrying the route set as Route values.
        dest: routes.length > 0 ? next : (remoteTarget && peerOf(remoteTarget, this.transport)) || next,
        routes,
        localSeq: seq,
        remoteSdp: Buffer.from(resp.body).toString(),
        redirectedTo,
      };
      // 13.2.2.4: the UAC core generates the ACK for a 2xx itself; same CSeq number, new branch, to the remote target.
      const ack = this.build('ACK', call.remoteTarget, {
        callId,
        seq,
        from: `<${this.aor}>;tag=${localTag}`,
        to: getHeader(resp, 'To') ?? `<${target}>`,
        extra: routes.map((value) => ({ name: 'Route', value })),
      });
      this.element.sendStateless(ack, call.dest);
      this.calls.set(callId, call);
      return call;
    }
  }

  /** 15.1.1: BYE within the dialog. */
  bye(call: Call): Promise<SipResponse> {
    call.localSeq++;
    const req = this.build('BYE', call.remoteTarget, {
      callId: call.callId,
      seq: call.localSeq,
      from: `<${call.localUri}>;tag=${call.localTag}`,
      to: `<${call.remoteUri}>;tag=${call.remoteTag}`,
      extra: (call.routes ?? []).map((value) => ({ name: 'Route', value })),
    });
    this.calls.delete(call.callId);
    return this.final(req, call.dest);
  }

  private onRequest(inc: IncomingRequest): void {
    const req = inc.request;
    const callId = getHeader(req, 'Call-ID') ?? '';
    if (req.method === 'INVITE') {
      this.incoming.push({ request: req, source: inc.source });
      if (!this.autoAnswer) return;
      // 12.1.1: "the UAS MUST copy all Record-Route header field values from the request into the response".
      const rr = getHeaders(req, 'Record-Route').map((value) => ({ name: 'Record-Route', value }));
      inc.respond(180, 'Ringing', { headers: [...rr, { name: 'Contact', value: `<${this.contactUri}>` }] });
      const ok = inc.respond(200, 'OK', {
        headers: [
          ...rr,
          { name: 'Contact', value: `<${this.contactUri}>` },
          { name: 'Content-Type', value: 'application/sdp' },
        ],
        body: Buffer.from(this.sdp()),
      });
      this.retransmitUntilAck(inc, ok, callId);
      return;
    }
    if (req.method === 'BYE') {
      // 15.1.2: a BYE that does not match a dialog gets 481.
      const known = this.calls.delete(callId) || this.awaitingAck.has(callId) || this.answered.delete(callId);
      inc.respond(known ? 200 : 481);
      return;
    }
    if (req.method === 'OPTIONS') {
      inc.respond(200, 'OK', { headers: [{ name: 'Allow', value: 'INVITE, ACK, CANCEL, BYE, OPTIONS' }] });
      return;
    }
    inc.respond(405, 'Method Not Allowed', {
      headers: [{ name: 'Allow', value: 'INVITE, ACK, CANCEL, BYE, OPTIONS' }],
    });
  }

  /** 13.3.1.4: the 2xx is retransmitted by the UAS core, T1 doubling to T2, until the ACK, for at most 64*T1. */
  private retransmitUntilAck(inc: IncomingRequest, ok: SipResponse, callId: string): void {
    const clock = this.element.clock;
    const t = DEFAULT_TIMERS;
    let interval = t.T1;
    let elapsed = 0;
    let timer = inc.source.transport === 'UDP' ? clock.setTimer(interval, tick) : undefined;
    this.answered.add(callId);
    this.awaitingAck.set(callId, () => {
      timer?.cancel();
      this.awaitingAck.delete(callId);
    });
    function tick(): void {
      elapsed += interval;
      if (elapsed >= 64 * t.T1) return;
      inc.sendResponse(ok);
      interval = Math.min(interval * 2, t.T2);
      timer = clock.setTimer(interval, tick);
    }
  }

  private sdp(): string {
    const host = this.element.transport.local.host;
    const ip = host.includes(':') ? 'IP6' : 'IP4';
    return `v=0\r\no=${this.user} 1 1 IN ${ip} ${host}\r\ns=-\r\nc=IN ${ip} ${host}\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
  }

  private build(
    method: string,
    uri: string,
    o: { callId: string; seq: number; from: string; to: string; extra?: Header[]; body?: Uint8Array },
  ): SipRequest {
    return {
      kind: 'request',
      method,
      uri,
      version: 'SIP/2.0',
      headers: [
        { name: 'Via', value: this.element.via(this.transport) },
        { name: 'Max-Forwards', value: '70' },
        { name: 'From', value: o.from },
        { name: 'To', value: o.to },
        { name: 'Call-ID', value: o.callId },
        { name: 'CSeq', value: `${o.seq} ${method}` },
        ...(o.extra ?? []),
      ],
      body: o.body ?? new Uint8Array(0),
    };
  }

  /** Run a client transaction and resolve with its final response; timeouts and transport errors reject. */
  private final(req: SipRequest, dest: Peer): Promise<SipResponse> {
    return new Promise((resolve, reject) => {
      this.element.request(req, dest, {
        onResponse: (r) => {
          if (r.status >= 200) resolve(r);
        },
        onTimeout: () => reject(new OverlayError('TIMEOUT', `${req.method} to ${dest.address}:${dest.port}`)),
        onTransportError: () => reject(new OverlayError('CALLEE_UNREACHABLE', `${req.method}: transport error`)),
      });
    });
  }
}
