import type { Admission, AdmissionControl } from './admission.ts';
import { isIPv4, isIPv6 } from 'node:net';
import { formatVia, parseVia } from './header-values.ts';
import type { SipMessage, SipRequest, SipResponse, Via } from './message.ts';

/**
 * The SIP transport interface (RFC 3261 section 18). The transport never
 * knows transactions exist: the transaction layer subscribes with
 * `onMessage` and sends through `send` / `sendResponse`.
 */

export type TransportName = 'UDP' | 'TCP' | 'TLS' | 'WS' | 'WSS';

/** Transports over a connection: responses go back on it, and nothing is retransmitted (RFC 3261 17.1.1.1). */
export function isStream(t: TransportName): boolean {
  return t !== 'UDP';
}

/** A Via sent-protocol or URI `transport` parameter, upper-cased, as one of ours (undefined: not one we speak). */
export function transportOf(name: string | null | undefined): TransportName | undefined {
  const t = name?.toUpperCase();
  return t === 'UDP' || t === 'TCP' || t === 'TLS' || t === 'WS' || t === 'WSS' ? t : undefined;
}

/** A remote end: where a message came from or goes to. `connId` names an open connection of that transport. */
export interface Peer {
  transport: TransportName;
  address: string;
  port: number;
  connId?: number;
  /** Only the open connection `connId` may carry this send: no new connection is opened (see response-route.ts). */
  connectionOnly?: boolean;
}

export interface InboundMessage {
  /** Parsed and validated message; for requests the top Via already carries `received` / `rport` (18.2.1, RFC 3581). */
  msg: SipMessage;
  source: Peer;
  /** The request's top Via as parsed by the transport (after stamping), so layers above need not parse it again. */
  topVia?: Via;
  /**
   * The admission decision the transport already made for a request that looked new (admission.ts), before it
   * spent anything on parsing: 'admit' or 'reject' (a dropped one never comes up).
   */
  admission?: Admission;
}

export interface TransportStats {
  received: number;
  sent: number;
  /** Input that could not be parsed and could not be answered: dropped. */
  malformedDropped: number;
  /** Malformed requests answered with a 400 (or 505/513) by the transport itself. */
  malformedAnswered: number;
  /** TCP connections closed because their byte stream could not be framed. */
  framingErrors: number;
  sendErrors: number;
  /** Exceptions caught while handling input (a bug above the transport; the input is dropped). */
  inboundErrors: number;
  tcpConnections: number;
  /** TCP connections refused because their source address already had the most allowed. */
  tcpRefusedPerAddress: number;
  /** TCP connections refused because the total cap was reached. */
  tcpRefusedTotal: number;
  /** TCP connections closed because a message did not complete in time (slowloris). */
  tcpClosedIncomplete: number;
  /** TCP connections closed because unfinished messages over all connections held too many bytes. */
  tcpClosedBuffer: number;
}

export function emptyTransportStats(): TransportStats {
  return {
    received: 0,
    sent: 0,
    malformedDropped: 0,
    malformedAnswered: 0,
    framingErrors: 0,
    sendErrors: 0,
    inboundErrors: 0,
    tcpConnections: 0,
    tcpRefusedPerAddress: 0,
    tcpRefusedTotal: 0,
    tcpClosedIncomplete: 0,
    tcpClosedBuffer: 0,
  };
}

export type SendErrorHandler = (err: Error) => void;

export interface SipTransport {
  /** Bound address (host without brackets) and port, shared by UDP and TCP. */
  readonly local: { host: string; port: number };
  /** The port another transport (TLS, WS, WSS) listens on, when this stack has it; default `local.port`. */
  portOf?(transport: TransportName): number | undefined;
  /** The host another transport listens on, when not `local.host`. */
  hostOf?(transport: TransportName): string;
  readonly stats: TransportStats;
  /**
   * Send to a peer: a datagram over UDP; over TCP the connection `connId` if open, else one to address:port.
   * A message is treated as immutable once sent: sending the same object again resends the same bytes.
   */
  send(msg: SipMessage, to: Peer, onError?: SendErrorHandler): void;
  /**
   * Send a response to where the transaction layer routed it (response-route.ts: the request's source unless it
   * was authenticated, RFC 3261 18.2.2 with RFC 3581 otherwise).
   */
  sendResponse(resp: SipResponse, to: Peer, onError?: SendErrorHandler): void;
  onMessage(handler: (m: InboundMessage) => void): void;
  close(): Promise<void>;
  /**
   * Optional: the bytes of the response just sent with sendResponse (the transport keeps only the last message's
   * bytes: asked later, it answers undefined), so that a transaction that only answers retransmissions can keep
   * these alone (RFC 3261 17.2.1 Completed, 17.2.2 Completed) and `resendBytes` them. A fresh buffer per message
   * that the transport never writes again, but it may share memory with other small buffers: what is kept for
   * long is copied (transaction-lingering.ts keeps it outside the JavaScript heap).
   */
  sentBytes?(resp: SipResponse): Uint8Array | undefined;
  /** Optional: send bytes from `sentBytes` again, to `to`. */
  resendBytes?(bytes: Uint8Array, to: Peer): void;
  /**
   * Optional: decide admission for datagrams before parsing them (admission.ts), so that under overload the
   * requests beyond capacity cost as little as possible.
   */
  admitWith?(admission: AdmissionControl): void;
  /** Optional: a keep-alive towards a flow (RFC 5626 4.4), so a NAT in front of the phone keeps its binding. */
  keepAlive?(to: Peer): void;
  /** Optional: whether `to` names a connection that is still open (always true for UDP); sip/flow.ts `flowAlive`. */
  isOpen?(to: Peer): boolean;
}

/** Host without IPv6 brackets; IPv4-mapped IPv6 addresses shown as IPv4. */
export function plainHost(host: string): string {
  let h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h.toLowerCase().startsWith('::ffff:') && isIPv4(h.slice(7))) h = h.slice(7);
  return h.toLowerCase();
}

/** Host as written in a Via or URI: IPv6 in brackets. */
export function uriHost(host: string): string {
  const h = plainHost(host);
  return isIPv6(h) ? `[${h}]` : h;
}

/**
 * RFC 3261 18.2.1: "the server transport MUST ... add a 'received' parameter to the top Via if the host portion
 * of the sent-by contains a domain name, or an IP address that differs from the packet source address". RFC 3581
 * section 4: when the top Via has `rport` without a value, the server "MUST set the value of the parameter to the
 * source port of the request", and then also adds `received` even if the address matches. Returns the stamped Via,
 * or undefined when the top Via cannot be parsed (the caller treats the message as malformed).
 */
export function stampTopVia(req: SipRequest, source: Peer): Via | undefined {
  const idx = req.headers.findIndex((h) => h.name === 'Via' || h.name.toLowerCase() === 'via');
  if (idx < 0) return undefined;
  const parsed = parseVia(req.headers[idx].value);
  if (!parsed.ok) return undefined;
  const via = parsed.value;
  const src = plainHost(source.address);
  const rportAt = via.params.findIndex(([k]) => k === 'rport');
  const wantsRport = rportAt >= 0 && via.params[rportAt][1] === null;
  const differs = plainHost(via.host) !== src;
  if (!differs && !wantsRport) return via;
  const raw = req.headers[idx].value;
  if (wantsRport) via.params[rportAt] = ['rport', String(source.port)];
  const recAt = via.params.findIndex(([k]) => k === 'received');
  if (recAt >= 0) via.params[recAt] = ['received', src];
  else via.params.push(['received', src]);
  // The usual case, a Via ending in a bare ";rport" and without `received` (what phones send, RFC 3581 section 3):
  // the two values are written into the text as it came rather than the whole Via formatted again.
  const plain = wantsRport && recAt < 0 && rportAt === via.params.length - 2 && raw.endsWith(';rport');
  const value = plain ? `${raw}=${source.port};received=${src}` : formatVia(via);
  req.headers[idx] = { name: req.headers[idx].name, value };
  return via;
}

function paramValue(via: Via, k: string): string | null | undefined {
  for (const [n, v] of via.params) if (n === k) return v;
  return undefined;
}

/**
 * Where a response goes by RFC 3261 18.2.2 for unreliable transports and for a reliable one whose connection is
 * gone, with RFC 3581 section 5: `maddr`, else `received` with the `rport` value (or the sent-by port), else the
 * sent-by itself; default port 5060. From the request's top Via as stamped by stampTopVia. Only for authenticated
 * requests: see response-route.ts.
 */
export function viaDestination(via: Via, source: Peer): Peer {
  const transport: TransportName = transportOf(via.transport) ?? source.transport;
  const maddr = paramValue(via, 'maddr');
  if (maddr) return { transport, address: plainHost(maddr), port: via.port ?? 5060 };
  const received = paramValue(via, 'received');
  const rport = paramValue(via, 'rport');
  const rportNum = rport ? Number(rport) : Number.NaN;
  const port = Number.isInteger(rportNum) && rportNum > 0 && rportNum < 65536 ? rportNum : (via.port ?? 5060);
  if (received) return { transport, address: plainHost(received), port };
  return { transport, address: plainHost(via.host), port };
}
