import { isIPv6 } from 'node:net';
import { silentLogger, type Logger } from '../util/log.ts';
import type { Admission, AdmissionControl } from './admission.ts';
import { fastReject, OVERLOAD_ACK_MARK } from './fast-reject.ts';
import { getTopVia } from './header-values.ts';
import type { SipMessage, SipRequest, SipResponse } from './message.ts';
import { errorStatus, findHeaderEnd, parseHead, parseMessage, parseMessageRaw, skipLeadingCrlf } from './parser.ts';
import { buildResponse, reasonPhrase } from './response.ts';
import { serialize } from './serializer.ts';
import { isStun, stunBindingResponse } from './stun.ts';
import {
  emptyTransportStats,
  type InboundMessage,
  type Peer,
  type SendErrorHandler,
  type SipTransport,
  stampTopVia,
  type TransportName,
  type TransportStats,
} from './transport.ts';
import {
  DEFAULT_TCP_LIMITS,
  type StreamMessageHandler,
  type StreamTls,
  TcpEndpoint,
  type TcpInit,
  type TcpLimitCounters,
} from './transport-tcp.ts';
import { UdpEndpoint } from './transport-udp.ts';

export interface TransportInit {
  host: string;
  /** 0 picks a free port (the same one for UDP and TCP). */
  port: number;
  /** Close a TCP connection after this long without traffic (default 120 s). */
  tcpIdleMs?: number;
  /** Largest message accepted (default 65,535 bytes): also the most one TCP connection buffers. */
  maxMessageBytes?: number;
  /** Accepted TCP connections per source address (default 64). */
  tcpMaxConnectionsPerAddress?: number;
  /** Accepted TCP connections in total (default 2,048). */
  tcpMaxConnections?: number;
  /** A message on TCP, and an accepted connection's first message, must be complete this soon (default 10 s; 0: off). */
  tcpMessageTimeoutMs?: number;
  /** Bytes of unfinished TCP messages held over all connections (default 16 MiB). */
  tcpMaxBufferedBytes?: number;
}

/** A connection-oriented transport the stack carries besides UDP: TCP, TLS, WS or WSS. */
export interface StreamEndpoint {
  readonly port: number;
  onMessage(fn: StreamMessageHandler): void;
  /** Write on connection `to.connId`, or (where the transport can dial) on one to to.address:to.port. */
  send(buf: Buffer, to: Peer, cb: (err: Error | null) => void): void;
  hasConnection(connId: number): boolean;
  /** TLS and WSS: a new certificate for connections accepted from now on. */
  setCertificate?(pair: StreamTls): void;
  close(): Promise<void>;
}

/**
 * UDP and TCP on one address and port, IPv4 or IPv6 (RFC 3261 section 18),
 * plus, on ports of their own, TLS (26.2) and WebSocket (RFC 7118) when given.
 * Decodes what arrives, stamps the top Via of requests (18.2.1, RFC 3581),
 * answers requests it cannot parse with a 400 naming the problem when a
 * response can be formed, drops and counts the rest, and never lets bad input
 * throw out of a socket handler.
 */
export class TransportStack implements SipTransport {
  readonly local: { host: string; port: number };
  readonly stats: TransportStats = emptyTransportStats();
  private readonly udp: UdpEndpoint;
  private readonly tcp: TcpEndpoint;
  /** TLS, WS, WSS when listened on (TCP is `tcp`). */
  private readonly streams = new Map<TransportName, StreamEndpoint>();
  private readonly streamHosts = new Map<TransportName, string>();
  private readonly log: Logger;
  private handler: (m: InboundMessage) => void = () => {};
  private admission: AdmissionControl | undefined;
  /**
   * The message sent last and its bytes, for `sentBytes`, which asks for them right after the send. A
   * retransmission (Timers A, E, G; a request retransmission answered from a transaction) serialises its message
   * again, which gives the same bytes: a per-message map would cost a weak-map entry (ephemeron work for the
   * garbage collector) on every send for the few messages ever retransmitted.
   */
  private lastMsg: SipMessage | undefined;
  private lastWire: Buffer | undefined;

  private constructor(host: string, udp: UdpEndpoint, tcp: TcpEndpoint, log: Logger) {
    this.local = { host, port: udp.port };
    this.udp = udp;
    this.tcp = tcp;
    this.log = log;
    udp.onDatagram((buf, address, port) => this.inbound(buf, { transport: 'UDP', address, port }));
    tcp.onMessage(this.streamHandler('TCP'));
    tcp.onFramingError = (reason) => {
      this.stats.framingErrors++;
      this.log.debug({ reason }, 'tcp framing error, connection closed');
    };
    tcp.onConnectionCount = (n) => {
      this.stats.tcpConnections = n;
    };
    tcp.onLimit = (kind) => {
      this.stats[STAT_OF[kind]]++;
      this.log.debug({ kind }, 'tcp connection refused or closed by a limit');
    };
  }

  private streamHandler(transport: TransportName): StreamMessageHandler {
    return (result, raw, address, port, connId) =>
      this.guarded(() => {
        const source: Peer = { transport, address, port, connId };
        this.stats.received++;
        if (result.ok) this.deliver(result.value, source, raw);
        else this.refuse(raw?.kind === 'request' ? raw : undefined, source, result.error);
      });
  }

  /** Carry `transport` (TLS, WS, WSS) over `endpoint` too: its messages come in and go out through this stack. */
  addStream(transport: Exclude<TransportName, 'UDP' | 'TCP'>, endpoint: StreamEndpoint, host?: string): void {
    if (this.streams.has(transport)) throw new Error(`${transport} is already carried`);
    this.streams.set(transport, endpoint);
    if (host !== undefined) this.streamHosts.set(transport, host.startsWith('[') ? host.slice(1, -1) : host);
    endpoint.onMessage(this.streamHandler(transport));
  }

  /** The endpoint carrying `transport`, if any. */
  stream(transport: TransportName): StreamEndpoint | undefined {
    return transport === 'TCP' ? this.tcp : this.streams.get(transport);
  }

  portOf(transport: TransportName): number | undefined {
    if (transport === 'UDP' || transport === 'TCP') return this.local.port;
    return this.streams.get(transport)?.port;
  }

  /** Whether `to` names a connection that is still open (always true for UDP). */
  isOpen(to: Peer): boolean {
    if (to.transport === 'UDP') return true;
    const ep = this.stream(to.transport);
    return ep !== undefined && to.connId !== undefined && ep.hasConnection(to.connId);
  }

  /** The host `transport` listens on (the UDP/TCP host unless it was given another). */
  hostOf(transport: TransportName): string {
    return this.streamHosts.get(transport) ?? this.local.host;
  }

  /**
   * Put a new certificate on the TLS and WSS listeners: new connections get it, open ones keep theirs. The pair
   * must have been checked by whoever read it (identity/server-certificate.ts).
   */
  setCertificate(pair: StreamTls): void {
    const eps = [...this.streams.values()].filter((e) => e.setCertificate);
    for (const ep of eps) ep.setCertificate?.(pair);
  }

  static async listen(init: TransportInit, components: { logger?: Logger } = {}): Promise<TransportStack> {
    const log = components.logger ?? silentLogger;
    const host = init.host.startsWith('[') ? init.host.slice(1, -1) : init.host;
    const d = DEFAULT_TCP_LIMITS;
    const tcpInit: TcpInit = {
      idleMs: init.tcpIdleMs ?? d.idleMs,
      maxMessageBytes: init.maxMessageBytes ?? 65_535,
      maxConnectionsPerAddress: init.tcpMaxConnectionsPerAddress ?? d.maxConnectionsPerAddress,
      maxConnections: init.tcpMaxConnections ?? d.maxConnections,
      messageTimeoutMs: init.tcpMessageTimeoutMs ?? d.messageTimeoutMs,
      maxBufferedBytes: init.tcpMaxBufferedBytes ?? d.maxBufferedBytes,
    };
    // UDP first; with port 0 the kernel's choice may already be taken on TCP, so try a few times.
    for (let attempt = 0; ; attempt++) {
      const udp = await UdpEndpoint.bind(host, init.port);
      try {
        const tcp = await TcpEndpoint.listen(host, udp.port, tcpInit);
        return new TransportStack(host, udp, tcp, log);
      } catch (e) {
        await udp.close();
        if (init.port !== 0 || attempt >= 10 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
    }
  }

  /** `host:port` for Via sent-by and Contact (IPv6 in brackets). */
  get hostport(): string {
    return isIPv6(this.local.host)
      ? `[${this.local.host}]:${this.local.port}`
      : `${this.local.host}:${this.local.port}`;
  }

  onMessage(handler: (m: InboundMessage) => void): void {
    this.handler = handler;
  }

  send(msg: SipMessage, to: Peer, onError?: SendErrorHandler): void {
    let buf: Buffer;
    if (msg === this.lastMsg && this.lastWire !== undefined) buf = this.lastWire;
    else {
      try {
        buf = serialize(msg);
      } catch (e) {
        this.sendFailed(e as Error, onError);
        return;
      }
      this.lastMsg = msg;
      this.lastWire = buf;
    }
    this.sendBytes(buf, to, onError);
  }

  sendResponse(resp: SipResponse, to: Peer, onError?: SendErrorHandler): void {
    // The route was chosen by the transaction layer (response-route.ts); over TCP, the connection `to.connId`
    // while it is open (18.2.2), else a new one unless `to.connectionOnly`.
    this.send(resp, to, onError);
  }

  sentBytes(resp: SipResponse): Uint8Array | undefined {
    return resp === this.lastMsg ? this.lastWire : undefined;
  }

  resendBytes(bytes: Uint8Array, to: Peer): void {
    this.sendBytes(bytes as Buffer, to);
  }

  async close(): Promise<void> {
    // What was sent before closing still goes out.
    this.flushUdp();
    await Promise.all([this.udp.close(), this.tcp.close(), ...[...this.streams.values()].map((s) => s.close())]);
  }

  /**
   * Destinations another carrier takes instead of the network: SIP between two adapters over the ring when one is
   * behind a NAT (overlay/sip-over-ring.ts). Its peers look like UDP peers to everything above.
   */
  setDetour(d: { owns(to: Peer): boolean; send(buf: Buffer, to: Peer): void }): void {
    this.detour = d;
  }

  /** Bytes that carrier received, handled as a datagram from `source`. */
  inject(buf: Buffer, source: Peer): void {
    this.inbound(buf, source);
  }

  private detour?: { owns(to: Peer): boolean; send(buf: Buffer, to: Peer): void };

  private sendBytes(buf: Buffer, to: Peer, onError?: SendErrorHandler): void {
    this.stats.sent++;
    if (this.detour?.owns(to)) {
      this.detour.send(buf, to);
      return;
    }
    if (to.transport === 'UDP') {
      // Datagrams wait for the end of this turn of the event loop and then go out together: the system calls of
      // a batch of requests read in one turn are made one after another instead of each between the handling
      // of two requests, which measurably costs less CPU per transaction (docs/design.md). A response leaves
      // microseconds later; the order of sends is kept.
      const q = this.udpOut;
      q.push(buf, to.address, to.port, onError);
      if (q.length === 4) setImmediate(this.flushUdp);
      return;
    }
    const ep = this.stream(to.transport);
    if (ep) ep.send(buf, to, (err) => err && this.sendFailed(err, onError));
    else this.sendFailed(new Error(`no ${to.transport} transport here`), onError);
  }

  /** UDP sends of this turn, four slots each: bytes, address, port, error handler. */
  private udpOut: unknown[] = [];

  private readonly flushUdp = (): void => {
    const q = this.udpOut;
    if (q.length === 0) return;
    this.udpOut = [];
    for (let i = 0; i < q.length; i += 4) {
      const onError = q[i + 3] as SendErrorHandler | undefined;
      this.udp.send(
        q[i] as Buffer,
        q[i + 1] as string,
        q[i + 2] as number,
        (err) => err && this.sendFailed(err, onError),
      );
    }
  };

  private sendFailed(err: Error, onError?: SendErrorHandler): void {
    this.stats.sendErrors++;
    this.log.debug({ err: err.message }, 'sip send failed');
    onError?.(err);
  }

  /**
   * A keep-alive towards a phone's flow, so its NAT binding stays open (RFC 5626 4.4): a double CRLF on its
   * connection (a phone that speaks outbound answers it with a CRLF pong, 4.4.1), or as a datagram over UDP.
   */
  keepAlive(to: Peer): void {
    if (this.detour?.owns(to)) return;
    const ping = Buffer.from('\r\n\r\n');
    if (to.transport === 'UDP') this.udp.send(ping, to.address, to.port, () => {});
    // A WebSocket endpoint pings its connections itself (RFC 6455 ping frames); a CRLF would reach a browser as a
    // SIP message.
    else if (to.transport === 'WS' || to.transport === 'WSS') return;
    else this.stream(to.transport)?.send(ping, { ...to, connectionOnly: to.connId !== undefined }, () => {});
  }

  private inbound(buf: Buffer, source: Peer): void {
    this.guarded(() => {
      // RFC 5626 8.4: a STUN Binding request on the SIP port is a phone's keep-alive; it is answered on that port.
      if (isStun(buf)) {
        const resp = stunBindingResponse(buf, source.address, source.port);
        if (resp) this.udp.send(resp, source.address, source.port, () => {});
        return;
      }
      this.stats.received++;
      // Under overload a request that may start a transaction is judged before it is parsed: one dropped here
      // costs a few byte comparisons (admission.ts). Retransmissions look the same and share that fate.
      const admission = this.admission;
      let verdict: Admission | undefined;
      if (admission !== undefined) {
        if (mayStartTransaction(buf)) {
          verdict = admission.classify();
          if (verdict === 'drop') return;
          if (verdict === 'reject') {
            // Refused from its bytes (fast-reject.ts); only an unusual request takes the parser to its 503.
            const resp = fastReject(buf, source.address, source.port, admission.retryAfterS);
            if (resp) {
              this.udp.send(resp, source.address, source.port, () => {});
              return;
            }
          }
        } else if (admission.limiting && isAck(buf) && buf.includes(OVERLOAD_ACK_MARK)) return; // ACK for a 503 above
      }
      const parsed = parseMessage(buf);
      if (parsed.ok) this.deliver(parsed.value, source, undefined, verdict);
      else this.refuse(salvageRequest(buf), source, parsed.error);
    });
  }

  admitWith(admission: AdmissionControl): void {
    this.admission = admission;
    // Under overload the kernel sheds what the process could not serve in time (see AdmissionControl.boundQueue).
    admission.boundQueue({ setBytes: (bytes) => this.udp.setReceiveBytes(bytes) });
  }

  private deliver(msg: SipMessage, source: Peer, raw?: SipMessage, admission?: Admission): void {
    if (msg.kind === 'response') {
      this.handler({ msg, source });
      return;
    }
    const topVia = stampTopVia(msg, source);
    if (!topVia) {
      this.refuse(raw?.kind === 'request' ? raw : msg, source, 'malformed Via');
      return;
    }
    this.handler({ msg, source, topVia, admission });
  }

  /** Nothing from the network may throw out of a socket handler: count it and carry on. */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.stats.inboundErrors++;
      this.log.warn({ err: (e as Error).message }, 'sip inbound handling failed');
    }
  }

  /** Answer a request that failed to parse or validate with 400/505/513, or drop it when no answer can be formed. */
  private refuse(req: SipRequest | undefined, source: Peer, error: string): void {
    if (!req || req.method === 'ACK' || !getTopVia(req).ok) {
      this.stats.malformedDropped++;
      this.log.debug({ error, from: source.address }, 'malformed sip dropped');
      return;
    }
    const status = errorStatus(error);
    const resp = buildResponse(req, status, `${reasonPhrase(status)}: ${error.replace(/[^\x20-\x7e]/g, '?')}`);
    this.stats.malformedAnswered++;
    this.log.debug({ error, from: source.address, status }, 'malformed sip answered');
    // The answer goes back to where the bytes came from: the Via of a malformed request is not trusted.
    this.send(resp, source);
  }
}

const STAT_OF: Record<keyof TcpLimitCounters, keyof TransportStats> = {
  refusedPerAddress: 'tcpRefusedPerAddress',
  refusedTotal: 'tcpRefusedTotal',
  closedIncomplete: 'tcpClosedIncomplete',
  closedBuffer: 'tcpClosedBuffer',
};

/** The request as far as it can be read: the full message, or just its head when the body or framing is bad. */
function salvageRequest(buf: Buffer): SipRequest | undefined {
  const raw = parseMessageRaw(buf);
  if (raw.ok) return raw.value.kind === 'request' ? raw.value : undefined;
  const from = skipLeadingCrlf(buf);
  const end = findHeaderEnd(buf, from);
  if (!end) return undefined;
  const head = parseHead(buf.toString('latin1', from, end.headEnd));
  if (!head.ok || head.value.start.kind !== 'request') return undefined;
  const s = head.value.start;
  return {
    kind: 'request',
    method: s.method,
    uri: s.uri,
    version: s.version,
    headers: head.value.headers,
    body: new Uint8Array(0),
  };
}

/**
 * Whether a datagram may be a request that starts a server transaction: not a response ("SIP/"), not an ACK or
 * CANCEL (they belong to transactions already admitted), not a keep-alive; anything else starting with a letter.
 */
function mayStartTransaction(buf: Buffer): boolean {
  if (buf.length < 8) return false;
  const b0 = buf[0];
  if (b0 < 0x41 || b0 > 0x5a) return false;
  if (b0 === 0x53 && buf[1] === 0x49 && buf[2] === 0x50 && buf[3] === 0x2f) return false; // SIP/
  if (isAck(buf)) return false;
  if (b0 === 0x43 && buf.toString('latin1', 0, 7) === 'CANCEL ') return false;
  return true;
}

function isAck(buf: Buffer): boolean {
  return buf[0] === 0x41 && buf[1] === 0x43 && buf[2] === 0x4b && buf[3] === 0x20;
}
