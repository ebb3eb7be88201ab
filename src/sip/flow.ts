/**
 * Flows (RFC 5626 section 3): how a phone is reached is the way its REGISTER
 * came in, not the address its Contact names. A phone behind a NAT writes its
 * private address in Contact; a TCP phone (Linphone) writes the ephemeral port
 * of the connection it opened, where nothing listens. Both are reachable only
 * over the flow: for UDP the packet's source address and port (RFC 3581), for
 * a connection-oriented transport (TCP, and TLS or WebSocket on top of this
 * interface) the connection itself (RFC 5923 connection reuse).
 *
 * The interface is transport-independent: a flow is a `Peer` as the transport
 * reported the request's source (`transport`, `address`, `port`, and `connId`
 * for a connection). A transport that carries a new kind of connection only
 * has to report `connId` and honour `connectionOnly` in its send.
 *
 *   const flow = flowOf(inc.source);             // remember with the binding
 *   element.request(req, flow, ...);             // reaches the phone over it
 *   directlyReachable(contactUri, flow)          // may a 302 name the contact?
 *
 * Flow tokens (RFC 5626 5.2) put a flow into a URI (a Record-Route, the user
 * part of a 302 target) so that a later request finds it without state. They
 * carry an HMAC under a secret of this process: nobody can make a token that
 * sends our traffic to an address of their choosing, and a token stops working
 * when the process restarts (its connections are gone anyway).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { SipUri } from './message.ts';
import { type Peer, plainHost, type TransportName } from './transport.ts';
import { peerOf } from './user-agent.ts';

/** The flow a request arrived on: over a connection, that connection only (RFC 5626 5.3: no new one is opened). */
export function flowOf(source: Peer): Peer {
  if (source.connId === undefined) return { transport: source.transport, address: source.address, port: source.port };
  return {
    transport: source.transport,
    address: source.address,
    port: source.port,
    connId: source.connId,
    connectionOnly: true,
  };
}

/** Addresses that are not routable beyond their own network (RFC 1918, RFC 6598, RFC 4193, loopback, link-local). */
export function isPrivateAddress(host: string): boolean {
  const h = plainHost(host);
  if (isIP(h) === 4) {
    const [a, b] = h.split('.').map(Number);
    return (
      a === 10 ||
      a === 127 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 169 && b === 254) ||
      (a === 100 && b >= 64 && b <= 127)
    );
  }
  if (isIP(h) === 6) return h === '::1' || /^f[cd]/i.test(h) || /^fe[89ab]/i.test(h);
  return false;
}

function isLoopback(host: string): boolean {
  const h = plainHost(host);
  return h === '::1' || h.startsWith('127.');
}

/**
 * Whether a caller elsewhere can reach the phone at its own Contact, so a plain 302 to the contact works (the
 * seed's flow). Not when:
 * - the phone asked for outbound (RFC 5626 `ob`: "send me requests over my flow");
 * - its Contact is the very address and port of the connection it registered over (Linphone over TCP: an ephemeral
 *   port where nothing listens);
 * - its Contact names the host it registered from with another UDP port (a NAT rewrote the port), or a private
 *   address other than the one it registered from (a NAT rewrote the address: RFC 3581's `received`).
 * A phone on a WebSocket is never reachable at its Contact.
 * A Contact on another public address (or any, registered from loopback) is a third-party registration (RFC 3261
 * 10.2) and is taken at its word; a
 * phone whose Contact is exactly where its datagrams come from is reachable there.
 */
export function directlyReachable(contact: SipUri, flow: Peer | undefined): boolean {
  if (!flow) return true;
  // A WebSocket client cannot be dialled (RFC 7118 section 5: its Contact host is an invalid name), nor can a
  // Contact that asks for a WebSocket: only the connection the phone opened reaches it.
  if (flow.transport === 'WS' || flow.transport === 'WSS') return false;
  const t = contact.params.find(([k]) => k === 'transport')?.[1]?.toLowerCase();
  if (t === 'ws' || t === 'wss') return false;
  // A `.invalid` name never resolves (RFC 6761 6.4): phones write one when they can be reached only over their flow.
  if (/\.invalid\.?$/i.test(contact.host)) return false;
  if (contact.params.some(([k]) => k === 'ob')) return false;
  const host = plainHost(contact.host);
  if (isIP(host) === 0) return true;
  const port = contact.port ?? 5060;
  const sameHost = host === plainHost(flow.address);
  if (sameHost && port === flow.port) return flow.connId === undefined;
  if (sameHost) return flow.connId !== undefined;
  // No NAT delivers from loopback: a local process registering another device's Contact is taken at its word.
  return !isPrivateAddress(host) || isLoopback(flow.address);
}

/** Where a request to a phone goes: its Contact when that reaches it, else the flow it registered or subscribed on. */
export function phoneDestination(contact: SipUri, flow: Peer | undefined, fallback?: TransportName): Peer | undefined {
  return flow && !directlyReachable(contact, flow) ? flow : peerOf(contact, fallback);
}

/** RFC 5626 5.3: "If the flow is no longer present, the proxy MUST send a 430 (Flow Failed) response". */
export const FLOW_FAILED = { status: 430, reason: 'Flow Failed' } as const;

/**
 * Whether a flow can still carry a request: a flow over a connection needs that very connection (RFC 5626 5.3, no
 * new one is opened); a UDP flow always can. A transport that cannot tell (no `isOpen`) is taken to say yes.
 */
export function flowAlive(transport: { isOpen?(to: Peer): boolean }, flow: Peer | undefined): boolean {
  if (!flow || flow.connId === undefined || !flow.connectionOnly) return true;
  return transport.isOpen?.(flow) ?? true;
}

/**
 * The bindings a request may go to (RFC 5626 section 7, fail-over between the flows of one instance): those whose
 * flow is still there, in their order; a binding over a connection that is gone is skipped, so a phone registered
 * over two flows (two `reg-id`s) is reached over the other. `failed` is true when bindings existed but every one
 * of them was over a dead flow: the answer is then 430 Flow Failed, not 480. A binding whose Contact is reachable
 * without its flow stays, whatever became of the connection.
 */
export function liveBindings<T extends { flow?: Peer; contact: { uri: SipUri } }>(
  transport: { isOpen?(to: Peer): boolean },
  bindings: readonly T[],
): { live: T[]; failed: boolean } {
  // A phone reachable at its Contact (a TCP phone listening where its Contact says) needs no flow: the connection
  // it registered over may be gone while a caller can still open a new one to it.
  const live = bindings.filter((b) => flowAlive(transport, b.flow) || directlyReachable(b.contact.uri, b.flow));
  return { live, failed: bindings.length > 0 && live.length === 0 };
}

const TAG_BYTES = 10;

function b64u(b: Buffer): string {
  return b.toString('base64url');
}

/**
 * HMAC-protected encodings of flows and of short-lived call targets, for URIs. Tokens are base64url (letters,
 * digits, `-`, `_`): safe in a URI user part and parameter value (RFC 3261 25.1 unreserved).
 */
export class FlowTokens {
  private readonly secret: Buffer;

  constructor(secret: Uint8Array = randomBytes(32)) {
    this.secret = Buffer.from(secret);
  }

  /** A token naming `flow` (no expiry: a dialog's Record-Route lives as long as the dialog). */
  flow(flow: Peer): string {
    const c = flow.connId === undefined ? '' : String(flow.connId);
    return this.seal(`f|${flow.transport}|${plainHost(flow.address)}|${flow.port}|${c}`);
  }

  /** The flow a token names, or undefined when it is not one of ours. */
  openFlow(token: string): Peer | undefined {
    const body = this.open(token);
    const m = body === undefined ? null : /^f\|([A-Z]{2,4})\|([0-9a-fA-F:.]+)\|(\d{1,5})\|(\d*)$/.exec(body);
    if (!m) return undefined;
    const port = Number(m[3]);
    if (port < 1 || port > 65535) return undefined;
    const transport = m[1] as Peer['transport'];
    if (m[4] === '') return { transport, address: m[2], port };
    return { transport, address: m[2], port, connId: Number(m[4]), connectionOnly: true };
  }

  /** A token standing for `target` (a URI) until `expiresAt` (wall ms), of a `kind` the user of the token chooses. */
  target(kind: string, target: string, expiresAt: number): string {
    return this.seal(`t|${kind}|${Math.floor(expiresAt / 1000)}|${target}`);
  }

  /** The target of a token of `kind` still valid at `now` (wall ms), else undefined. */
  openTarget(kind: string, token: string, now: number): string | undefined {
    const body = this.open(token);
    if (body === undefined) return undefined;
    const prefix = `t|${kind}|`;
    if (!body.startsWith(prefix)) return undefined;
    const rest = body.slice(prefix.length);
    const bar = rest.indexOf('|');
    const exp = Number(rest.slice(0, bar));
    if (bar < 0 || !Number.isSafeInteger(exp) || exp * 1000 < now) return undefined;
    return rest.slice(bar + 1);
  }

  private seal(body: string): string {
    const b = Buffer.from(body, 'utf8');
    return b64u(Buffer.concat([this.tag(b), b]));
  }

  private open(token: string): string | undefined {
    if (token.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
    const raw = Buffer.from(token, 'base64url');
    if (raw.length <= TAG_BYTES) return undefined;
    const body = raw.subarray(TAG_BYTES);
    if (!timingSafeEqual(raw.subarray(0, TAG_BYTES), this.tag(body))) return undefined;
    return body.toString('utf8');
  }

  private tag(body: Buffer): Buffer {
    return createHmac('sha256', this.secret).update(body).digest().subarray(0, TAG_BYTES);
  }
}
