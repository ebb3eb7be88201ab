/**
 * The SIP requests an adapter relays rather than answers (RFC 3261 16): inside a dialog it record-routed, a
 * caller's phone following a 302 to one of its phones reached over its flow, and its own phone following the
 * adapter's 302 back through it to a contact the adapter verified (the adapter used as outbound proxy), with
 * the ACKs of those calls. Only the adapter's own authenticated phones are relayed (issue 16 item 6). This is
 * SIP proxying between phones; the ring's relays for nodes behind a NAT are rpc/relay.ts. The SIP half
 * (adapter.ts) owns one, tells it each contact a verified 302 named, and hands it what its front door does
 * not answer.
 */
import type { PhoneAuth } from '../sip/digest.ts';
import type { IncomingRequest, SipElement } from '../sip/element.ts';
import { getCallId } from '../sip/header-values.ts';
import { getHeaders, removeHeader, type SipRequest, type SipUri } from '../sip/message.ts';
import type { StatefulProxy } from '../sip/proxy.ts';
import { contactKey } from '../sip/registrar.ts';
import type { Peer } from '../sip/transport.ts';
import { peerOf } from '../sip/user-agent.ts';
import { parseRequestUri } from '../sip/uri.ts';
import type { Clock } from '../util/clock.ts';
import type { PhoneFlows } from './phone-flows.ts';
import type { PhoneSubscriptions } from './phone-presence.ts';

/** How long a verified contact may be used as a proxy target (ms). */
const VERIFIED_TTL_MS = 10 * 60_000;

export class AdapterRelay {
  private readonly element: SipElement;
  private readonly proxy: StatefulProxy;
  private readonly flows: PhoneFlows;
  private readonly subscriptions?: PhoneSubscriptions;
  private readonly auth: PhoneAuth;
  private readonly clock: Clock;
  private readonly stats: { proxied: number };
  /** Whether the authenticated user is who the request's From names (adapter.ts; answers 403 when not). */
  private readonly fromIs: (inc: IncomingRequest, user: string) => boolean;
  /** contactKey of verified 302 targets -> expiry. */
  private readonly verified = new Map<string, number>();
  /** Call-IDs of authenticated requests relayed to a verified contact -> expiry: their ACKs may follow. */
  private readonly relayedCalls = new Map<string, number>();

  constructor(c: {
    element: SipElement;
    proxy: StatefulProxy;
    flows: PhoneFlows;
    subscriptions?: PhoneSubscriptions;
    auth: PhoneAuth;
    clock: Clock;
    /** The adapter's counters: `proxied` counts here. */
    stats: { proxied: number };
    fromIs: (inc: IncomingRequest, user: string) => boolean;
  }) {
    this.element = c.element;
    this.proxy = c.proxy;
    this.flows = c.flows;
    this.subscriptions = c.subscriptions;
    this.auth = c.auth;
    this.clock = c.clock;
    this.stats = c.stats;
    this.fromIs = c.fromIs;
  }

  /** A verified 302 named this contact: the phone's request to it may come back through us for a while. */
  verifiedContact(uri: SipUri): void {
    this.verified.set(contactKey(uri), this.clock.now() + VERIFIED_TTL_MS);
  }

  /**
   * Requests this adapter relays rather than answers: inside a dialog it record-routed, a caller's phone following
   * a 302 to one of our phones reached over its flow, and our own phone following our 302 back through us
   * (rewritten for a phone we must stay in the path of, or the adapter used as outbound proxy).
   */
  relay(inc: IncomingRequest): boolean {
    // A SUBSCRIBE inside a presence subscription of ours (refresh or end) is answered by that subscription.
    if (this.subscriptions?.inDialog(inc)) return true;
    if (this.flows.inDialog(inc) || this.flows.inbound(inc)) return true;
    if (this.flows.isOutbound(inc.request)) {
      if (this.authorizeRelay(inc)) this.flows.outbound(inc);
      return true;
    }
    if (!this.isVerifiedTarget(inc.request.uri)) return false;
    if (this.authorizeRelay(inc)) this.forward(inc);
    return true;
  }

  /** Issue 16 item 6: only this adapter's own phones are relayed, never a stranger who names a verified contact. */
  private authorizeRelay(inc: IncomingRequest): boolean {
    if (this.auth === 'open') return true;
    const user = this.auth.digest.authenticate(inc, true);
    if (user === undefined) return false;
    if (!this.fromIs(inc, user)) return false;
    const callId = getCallId(inc.request);
    if (callId !== undefined) {
      this.relayedCalls.set(callId, this.clock.now() + VERIFIED_TTL_MS);
      if (this.relayedCalls.size > 10_000) this.relayedCalls.delete(this.relayedCalls.keys().next().value as string);
    }
    return true;
  }

  private isVerifiedTarget(uri: string): boolean {
    const u = parseRequestUri(uri);
    if (!u.ok) return false;
    const k = contactKey(u.value);
    const exp = this.verified.get(k);
    if (exp === undefined) return false;
    if (exp < this.clock.now()) {
      this.verified.delete(k);
      return false;
    }
    return true;
  }

  /** The phone's redirected request came back through us: proxy it to the verified contact (RFC 3261 16.6). */
  private forward(inc: IncomingRequest): void {
    const req = inc.request;
    const u = parseRequestUri(req.uri);
    const dest = u.ok ? peerOf(u.value) : undefined;
    if (!dest) {
      inc.respond(480, 'Temporarily Unavailable');
      return;
    }
    dropOwnRoute(req, this.element.hostport);
    this.stats.proxied++;
    this.proxy.forward(inc, { uri: req.uri, dest });
  }

  /** The ACK for a 2xx is end to end: pass it on statelessly (RFC 3261 16.11) when it targets a verified contact. */
  forwardAck(req: SipRequest, _source: Peer): void {
    if (this.flows.ack(req)) return;
    if (!this.isVerifiedTarget(req.uri)) return;
    // An ACK cannot be challenged (RFC 3261 22.1): it passes only within a call an authenticated phone placed here.
    if (this.auth !== 'open') {
      const callId = getCallId(req);
      const exp = callId === undefined ? undefined : this.relayedCalls.get(callId);
      if (exp === undefined || exp < this.clock.now()) return;
    }
    const u = parseRequestUri(req.uri);
    const dest = u.ok ? peerOf(u.value) : undefined;
    if (!dest) return;
    dropOwnRoute(req, this.element.hostport);
    const headers = [{ name: 'Via', value: this.element.via(dest.transport) }, ...req.headers];
    this.element.sendStateless({ ...req, headers }, dest);
  }
}

/** RFC 3261 16.4: a Route naming this element is removed before forwarding. */
function dropOwnRoute(req: SipRequest, hostport: string): void {
  const routes = getHeaders(req, 'Route');
  if (routes.length === 0) return;
  const keep = routes.filter((r) => !r.includes(hostport));
  removeHeader(req, 'Route');
  for (const r of keep) req.headers.push({ name: 'Route', value: r });
}
