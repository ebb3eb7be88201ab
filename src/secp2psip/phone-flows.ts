/**
 * An adapter in the path of calls whose phones cannot be reached at their
 * Contact (docs/design.md "Phones behind NAT and over TCP"). The seed's 302
 * sends the caller's phone straight to the callee's phone; that needs both
 * Contacts to be reachable. When one is not (a private address behind a NAT,
 * the ephemeral port of a TCP phone), that phone's own adapter takes its place:
 *
 * - Callee side: the 302 names `sip:<in-token>@<callee adapter>` (local-phones.ts);
 *   the caller's phone sends its INVITE there and the adapter proxies it over
 *   the callee phone's flow.
 * - Caller side: the adapter rewrites the verified 302 it hands its phone to
 *   `sip:<out-token>@<caller adapter>`, whose token stands for the verified
 *   target; the phone's INVITE comes back over its flow and is proxied there.
 *
 * Each proxied INVITE gets two Record-Route values naming both flows
 * (sip/flow-routes.ts), so in-dialog requests (ACK, BYE, re-INVITE) in either
 * direction pass the adapter and go over the right flow. Tokens are HMACs under
 * the adapter's secret: an in-token opens only the path to the phone the verified
 * REDIRECT named (for five minutes), an out-token is used only by the adapter's
 * own authenticated phones, and a Route names only flows the adapter itself put
 * into a call it proxied.
 */
import type { IncomingRequest, SipElement } from '../sip/element.ts';
import { directlyReachable, FLOW_FAILED, type FlowTokens, flowOf, liveBindings } from '../sip/flow.ts';
import type { FlowProxy } from '../sip/flow-proxy.ts';
import { transportParam } from '../sip/flow-routes.ts';
import { getFrom, parseContactValues, parseNameAddr } from '../sip/header-values.ts';
import { getHeaders, removeHeader, type SipRequest, type SipResponse } from '../sip/message.ts';
import type { Peer } from '../sip/transport.ts';
import { formatUri, parseRequestUri } from '../sip/uri.ts';
import { peerOf } from '../sip/user-agent.ts';
import type { Logger } from '../util/log.ts';
import {
  INBOUND_TOKEN,
  type RegisteredPhones,
  TARGET_TOKEN_TTL_MS,
  VERIFIED_CALLER_SEPARATOR,
} from './local-phones.ts';

/**
 * The header the callee's adapter puts on an INVITE it forwards to its phone, naming the caller the ring verified
 * (the browser phone shows it). It is removed from everything else the adapter forwards to its phones.
 */
export const VERIFIED_HEADER = 'X-Secp2psip-Verified';

/** The token kind of a 302 target standing for a verified target, handed to this adapter's own phone. */
export const OUTBOUND_TOKEN = 'out';

export class PhoneFlows {
  readonly stats = { inbound: 0, outbound: 0, rewritten: 0, followed: 0 };
  private readonly element: SipElement;
  private readonly tokens: FlowTokens;
  private readonly fp: FlowProxy;
  private readonly phones: RegisteredPhones;
  private readonly wallNow: () => number;
  private readonly log: Logger;

  constructor(c: {
    element: SipElement;
    tokens: FlowTokens;
    flowProxy: FlowProxy;
    phones: RegisteredPhones;
    wallNow: () => number;
    log: Logger;
    /** The adapter is behind a NAT itself (local-phones.ts PhoneRoute.behindNat): it stays in every call's path. */
    behindNat?: boolean;
  }) {
    this.element = c.element;
    this.tokens = c.tokens;
    this.fp = c.flowProxy;
    this.phones = c.phones;
    this.wallNow = c.wallNow;
    this.log = c.log;
    this.behindNat = c.behindNat ?? false;
  }

  /** Mutable: an adapter learns it is behind a NAT with no port forward only once the ring's dial-back says so. */
  behindNat: boolean;

  /**
   * Verified targets reached over the ring (overlay/sip-over-ring.ts) rather than the network: the callee's adapter or ours is
   * behind a NAT. Target URI -> the pseudo peer standing for the callee's adapter, until expiry.
   */
  private readonly ringRoutes = new Map<string, { peer: Peer; exp: number }>();

  /** Send the INVITE for verified `target` to `peer` (the callee's adapter over the ring) for the token's lifetime. */
  routeOverRing(target: string, peer: Peer): void {
    const now = this.wallNow();
    this.ringRoutes.set(target, { peer, exp: now + TARGET_TOKEN_TTL_MS });
    if (this.ringRoutes.size > 10_000)
      for (const [k, v] of this.ringRoutes) if (v.exp < now || this.ringRoutes.size > 10_000) this.ringRoutes.delete(k);
  }

  /** Where a verified target goes: over the ring when routeOverRing said so, else to its own host and port. */
  private destOf(target: string, uri: Parameters<typeof peerOf>[0]): Peer | undefined {
    const r = this.ringRoutes.get(target);
    if (r && r.exp >= this.wallNow()) return r.peer;
    return peerOf(uri);
  }

  /** A request inside a dialog we record-routed: on over the flow our Route names (RFC 3261 16.4, 16.6). */
  inDialog(inc: IncomingRequest): boolean {
    if (!this.fp.routes.isOwnRoute(inc.request)) return false;
    // Only the INVITE that opened the call may say who was verified (a re-INVITE could claim anything).
    removeHeader(inc.request, VERIFIED_HEADER);
    return this.fp.inDialog(inc);
  }

  /** The ACK for a 2xx inside a dialog we record-routed: passed on statelessly (16.11). */
  ack(req: SipRequest): boolean {
    return this.fp.ack(req);
  }

  /** The Request-URI's user part as a token of `kind`, opened: undefined when it is not one. */
  private tokenTarget(req: SipRequest, kind: string): string | undefined {
    const u = parseRequestUri(req.uri);
    const user = u.ok ? u.value.user : undefined;
    return user && user.length > 20 ? this.tokens.openTarget(kind, user, this.wallNow()) : undefined;
  }

  /** Whether the request names one of our out-tokens (the caller's own phone following its rewritten 302). */
  isOutbound(req: SipRequest): boolean {
    return req.method === 'INVITE' && this.tokenTarget(req, OUTBOUND_TOKEN) !== undefined;
  }

  /** A caller's phone following the 302 that named our in-token: proxied to the callee's phone over its flow. */
  inbound(inc: IncomingRequest): boolean {
    if (inc.request.method !== 'INVITE') return false;
    const target = this.tokenTarget(inc.request, INBOUND_TOKEN);
    if (target === undefined) return false;
    const [name, verified] = target.split(VERIFIED_CALLER_SEPARATOR);
    // The callee's phone learns who calls from us, never from the caller: a header it sent is dropped, and ours says
    // whom the ring verified, when the From names that user (RFC 3261 22: the From alone proves nothing).
    removeHeader(inc.request, VERIFIED_HEADER);
    const from = getFrom(inc.request);
    if (verified !== undefined && from.ok && from.value.uri.user === verified)
      inc.request.headers.push({ name: VERIFIED_HEADER, value: verified });
    // RFC 5626 7: of the phone's flows (one per reg-id of its instance), one still open; all gone is 430.
    const { live, failed } = liveBindings(this.element.transport, this.phones.bindingsOf(name));
    if (failed) {
      inc.respond(FLOW_FAILED.status, FLOW_FAILED.reason);
      return true;
    }
    const b = live[0];
    const dest = b ? (b.flow ?? peerOf(b.contact.uri)) : undefined;
    if (!b || !dest) {
      inc.respond(480, `Temporarily Unavailable: ${name}'s phone is not registered`);
      return true;
    }
    this.stats.inbound++;
    this.log.debug(
      { callee: name, over: `${dest.transport} ${dest.address}:${dest.port}` },
      'INVITE over the phone flow',
    );
    // 16.6 step 2: the Request-URI becomes the phone's registered contact.
    this.forwardRecordRouted(inc, formatUri(b.contact.uri), dest);
    return true;
  }

  /** Our own phone following its rewritten 302: proxied to the verified target (the caller checked the phone). */
  outbound(inc: IncomingRequest): boolean {
    const target = this.tokenTarget(inc.request, OUTBOUND_TOKEN);
    if (target === undefined) return false;
    const u = parseRequestUri(target);
    const dest = u.ok ? this.destOf(target, u.value) : undefined;
    if (!dest) {
      inc.respond(480, 'Temporarily Unavailable');
      return true;
    }
    this.stats.outbound++;
    this.forwardRecordRouted(inc, target, dest);
    return true;
  }

  /**
   * The verified 302 for our phone's INVITE, which came over `source` with `contact`: when the phone cannot be
   * reached at that Contact, each target becomes one of our out-tokens, so the call passes us over the phone's flow.
   */
  rewrite302(resp: SipResponse, source: Peer, contact: string | undefined, inPath = false): SipResponse {
    const c = contact === undefined ? undefined : parseNameAddr(contact);
    if (!this.behindNat && !inPath && c?.ok && directlyReachable(c.value.uri, flowOf(source))) return resp;
    const exp = this.wallNow() + TARGET_TOKEN_TTL_MS;
    const headers = resp.headers.map((h) => {
      if (h.name.toLowerCase() !== 'contact' && h.name !== 'm') return h;
      const parsed = parseContactValues([h.value]);
      if (!parsed.ok || parsed.value === '*') return h;
      const values = parsed.value.map((n) => {
        const target = formatUri(n.uri);
        const token = this.tokens.target(OUTBOUND_TOKEN, target, exp);
        // Named by the address the phone reached us at: behind a NAT, our LAN address, not the public one.
        return `<sip:${token}@${this.fp.routes.hostportFor(source)}${transportParam(source.transport)}>`;
      });
      return { name: h.name, value: values.join(', ') };
    });
    this.stats.rewritten++;
    return { ...resp, headers };
  }

  /**
   * A WebSocket phone's INVITE, answered by a verified 302: a browser phone (JsSIP) does not follow redirects, so the
   * adapter follows it for the phone, proxying the INVITE to the first target with itself in the path (the phone is
   * reached only over its WebSocket, RFC 7118 section 5). False when the 302 names no usable target.
   */
  followRedirect(inc: IncomingRequest, resp: SipResponse): boolean {
    const contacts = parseContactValues(getHeaders(resp, 'Contact'));
    const first = contacts.ok && contacts.value !== '*' ? contacts.value[0] : undefined;
    const dest = first ? this.destOf(formatUri(first.uri), first.uri) : undefined;
    if (!first || !dest) return false;
    this.stats.followed++;
    this.forwardRecordRouted(inc, formatUri(first.uri), dest);
    return true;
  }

  private forwardRecordRouted(inc: IncomingRequest, uri: string, dest: Peer): void {
    this.fp.forward(inc, uri, dest);
  }
}
