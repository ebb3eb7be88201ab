import { silentLogger, type Logger } from '../util/log.ts';
import type { IncomingRequest, SipElement } from './element.ts';
import { SipFrontDoor } from './front-door.ts';
import type { Header } from './message.ts';
import { bindingContact, type Registrar } from './registrar.ts';
import { directlyReachable, FLOW_FAILED, FlowTokens, flowOf, liveBindings } from './flow.ts';
import { FlowProxy, followedTarget } from './flow-proxy.ts';
import { formatUri } from './uri.ts';
import { peerOf } from './user-agent.ts';

/**
 * Registrar plus redirect server (RFC 3261 8.3 and 10.3) behind the shared UAS front door (front-door.ts):
 * REGISTER updates the location service and remembers the flow it came on; an INVITE for a registered
 * address-of-record is answered 302 with its bindings as Contacts, 404 otherwise. Two cases are proxied instead
 * (flow-proxy.ts): an INVITE whose Request-URI already is one of the bindings (a phone using this server as its
 * outbound proxy follows the 302 back through it: a second 302 would loop), and a callee whose phones can only be
 * reached over their flows (behind a NAT, over TCP).
 */
export class RedirectServer {
  readonly door: SipFrontDoor;
  readonly flows: FlowProxy;
  private readonly registrar: Registrar;
  private readonly element: SipElement;
  private readonly log: Logger;
  readonly stats = { registers: 0, redirects: 0, notFound: 0, proxied: 0 };

  constructor(components: { element: SipElement; registrar: Registrar; tokens?: FlowTokens; logger?: Logger }) {
    this.registrar = components.registrar;
    this.element = components.element;
    this.log = components.logger ?? silentLogger;
    this.flows = new FlowProxy({
      element: components.element,
      tokens: components.tokens ?? new FlowTokens(),
      logger: this.log,
    });
    this.door = new SipFrontDoor({
      element: components.element,
      logger: this.log,
      user: {
        methods: { REGISTER: (inc) => this.register(inc), INVITE: (inc) => this.invite(inc) },
        relay: (inc) => this.flows.inDialog(inc) || this.flows.followed(inc),
        onAck: (req) => this.flows.ack(req),
      },
    });
  }

  private register(inc: IncomingRequest): void {
    this.stats.registers++;
    const out = this.registrar.register(inc.request, flowOf(inc.source));
    inc.respond(out.status, out.reason, { headers: out.headers });
  }

  private invite(inc: IncomingRequest): void {
    const uri = inc.requestUri;
    if (!uri.ok) {
      inc.respond(400, `Bad Request: ${uri.error}`);
      return;
    }
    // RFC 5626 7: only flows still open (several flows of one instance: a live one); every one gone is 430.
    const { live: bindings, failed } = liveBindings(this.element.transport, this.registrar.lookup(uri.value));
    if (failed) {
      inc.respond(FLOW_FAILED.status, FLOW_FAILED.reason);
      return;
    }
    if (bindings.length === 0) {
      this.stats.notFound++;
      inc.respond(404, 'Not Found');
      return;
    }
    // Never a 302 naming the request's own target, and none naming phones only their flows reach: proxy there.
    const followed = followedTarget(uri, bindings);
    const unreachable = bindings.every((b) => !directlyReachable(b.contact.uri, b.flow));
    const target = followed ?? (unreachable ? bindings[0] : undefined);
    if (target) {
      const dest = target.flow ?? peerOf(target.contact.uri);
      if (dest) {
        this.stats.proxied++;
        this.flows.forward(inc, formatUri(target.contact.uri), dest);
        return;
      }
    }
    // 8.3: "the redirect server ... returns ... a 3xx response [with] Contact header fields". 21.3.3: 302 Moved
    // Temporarily; the Contact's expires parameter says how long the address is valid.
    const headers: Header[] = bindings.map((b) => ({ name: 'Contact', value: bindingContact(b) }));
    for (const b of bindings) {
      const dest = b.flow ?? peerOf(b.contact.uri);
      if (dest) this.flows.redirectedTo(b.contact.uri, dest);
    }
    this.stats.redirects++;
    inc.respond(302, 'Moved Temporarily', { headers });
  }
}
