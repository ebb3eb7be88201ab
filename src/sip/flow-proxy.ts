/**
 * What a redirect server does instead of a 302 that could not work
 * (docs/design.md "No redirect loops"):
 *
 * - A phone that uses the server as its outbound proxy sends the redirected
 *   INVITE back to it, with the 302's target as Request-URI. Answering it
 *   with the same 302 again makes a loop a phone such as Linphone follows
 *   forever; so a request whose Request-URI is itself one of the targets the
 *   server would redirect to is proxied there instead (RFC 3261 16). No server
 *   of the product answers a 302 naming the request's own target.
 * - A registered phone that cannot be reached at its Contact (sip/flow.ts) is
 *   reached by proxying over its flow, record-routed so that the dialog's
 *   later requests find the flow too (flow-routes.ts).
 *
 * Used by the registrar/redirect server and the WhanauSIP node or gateway;
 * the SecP2PSIP adapter does the same through its verified targets and flow
 * tokens (secp2psip/phone-flows.ts).
 */
import type { Result } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { IncomingRequest, SipElement } from './element.ts';
import { FLOW_FAILED, type FlowTokens, flowAlive, flowOf } from './flow.ts';
import { type FacingAddress, FlowRoutes } from './flow-routes.ts';
import type { NameAddr, SipRequest, SipUri } from './message.ts';
import { StatefulProxy } from './proxy.ts';
import { contactKey } from './registrar.ts';
import type { Peer } from './transport.ts';
import { parseRequestUri, sipUriEquals } from './uri.ts';

/** The target among `targets` that the request's Request-URI already is (a redirect followed back to us), if any. */
export function followedTarget<T extends { contact: NameAddr }>(
  reqUri: string | Result<SipUri>,
  targets: readonly T[],
): T | undefined {
  const u = typeof reqUri === 'string' ? parseRequestUri(reqUri) : reqUri;
  if (!u.ok) return undefined;
  for (const t of targets) if (sipUriEquals(t.contact.uri, u.value)) return t;
  return undefined;
}

/** How long a target we redirected to is recognised when the phone follows the 302 back through us (ms). */
const REDIRECTED_TTL_MS = 5 * 60_000;
const MAX_REDIRECTED = 10_000;

export class FlowProxy {
  readonly proxy: StatefulProxy;
  readonly routes: FlowRoutes;
  readonly stats = { proxied: 0, inDialog: 0, acks: 0, flowFailed: 0 };
  private readonly element: SipElement;
  /** contactKey of targets we answered a 302 with -> where the target is reached, until when. */
  private readonly redirected = new Map<string, { dest: Peer; until: number }>();

  constructor(c: { element: SipElement; tokens: FlowTokens; facing?: FacingAddress; logger?: Logger }) {
    this.element = c.element;
    this.proxy = new StatefulProxy({ element: c.element, logger: c.logger });
    this.routes = new FlowRoutes({ element: c.element, tokens: c.tokens, facing: c.facing });
  }

  /** Remember a target we answer a 302 with (reached at `dest`), so that following it back through us is proxied. */
  redirectedTo(contact: SipUri, dest: Peer): void {
    const now = this.element.clock.now();
    const key = contactKey(contact);
    const held = this.redirected.get(key);
    // Deleted first so that a refreshed target moves to the end (the oldest is dropped when the map is full); its
    // record is reused, so that answering the same target again allocates nothing that outlives the request.
    this.redirected.delete(key);
    if (held === undefined) this.redirected.set(key, { dest, until: now + REDIRECTED_TTL_MS });
    else {
      held.dest = dest;
      held.until = now + REDIRECTED_TTL_MS;
      this.redirected.set(key, held);
    }
    if (this.redirected.size > MAX_REDIRECTED) this.redirected.delete(this.redirected.keys().next().value as string);
  }

  /**
   * A request whose Request-URI is a target we redirected to (the phone follows our 302 back through us, as with
   * an outbound proxy): proxied there, record-routed. True when it was one.
   */
  followed(inc: IncomingRequest, authorize: (inc: IncomingRequest) => boolean = () => true): boolean {
    if (inc.request.method !== 'INVITE') return false;
    if (this.redirected.size === 0) return false;
    const u = inc.requestUri;
    const hit = u.ok ? this.redirected.get(contactKey(u.value)) : undefined;
    if (!hit || hit.until < this.element.clock.now()) return false;
    // `authorize` answers (a challenge, a refusal) when it says no: the request is ours either way.
    if (authorize(inc)) this.forward(inc, inc.request.uri, hit.dest);
    return true;
  }

  /**
   * RFC 5626 5.3: a request that would go over a flow whose connection is gone gets 430 Flow Failed (a 503 would
   * tell the sender to retry the same flow later); the UA then registers a new flow, the caller may try again.
   */
  private failedFlow(inc: IncomingRequest, dest: Peer): boolean {
    if (flowAlive(this.element.transport, dest)) return false;
    this.stats.flowFailed++;
    if (!inc.finalSent) inc.respond(FLOW_FAILED.status, FLOW_FAILED.reason);
    return true;
  }

  /** Proxy `inc` to `uri` at `dest`, record-routed over both flows so in-dialog requests pass here too. */
  forward(inc: IncomingRequest, uri: string, dest: Peer): void {
    if (this.failedFlow(inc, dest)) return;
    this.stats.proxied++;
    this.proxy.forward(inc, { uri, dest, recordRoute: this.routes.recordRoute(flowOf(inc.source), dest) });
  }

  /** A request inside a dialog we record-routed: on over the flow our Route names. True when it was ours. */
  inDialog(inc: IncomingRequest): boolean {
    if (!this.routes.isOwnRoute(inc.request)) return false;
    const flow = this.routes.popOwn(inc.request);
    if (!flow) return false;
    // Addressed by our flow token: the flow it names is gone (its connection closed), 430 (RFC 5626 5.3).
    if (this.failedFlow(inc, flow)) return true;
    this.stats.inDialog++;
    this.proxy.forward(inc, { uri: inc.request.uri, dest: flow });
    return true;
  }

  /** The ACK for a 2xx inside a dialog we record-routed: passed on statelessly (RFC 3261 16.11). */
  ack(req: SipRequest): boolean {
    const flow = this.routes.popOwn(req);
    if (!flow) return false;
    // An ACK gets no response (RFC 3261 17.1.1.3): over a flow that is gone it is dropped, and it was ours.
    if (!flowAlive(this.element.transport, flow)) return true;
    this.stats.acks++;
    const via = this.element.via(flow.transport);
    this.element.sendStateless({ ...req, headers: [{ name: 'Via', value: via }, ...req.headers] }, flow);
    return true;
  }
}
