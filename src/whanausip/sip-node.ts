/**
 * The SIP side of a WhanauSIP node or gateway (seed 003 sections 3.4 and 4.7).
 *
 * - INVITE to `sip:<40-hex>@<this host>`: the user part is a key hash; LOOKUP
 *   it in the Whanau DHT and answer 302 with the contact of the verified
 *   record (a phone's contact or `sip:<hash>@<ip:port>`), 404 when the DHT has
 *   no valid record, 400 when the user part is not a key hash (section 4.7).
 * - Node role (section 3.4.3): an unmodified phone registers here as
 *   `sip:<the node's hash>@<node>` (RFC 3261 10.3); INVITEs for the node's
 *   own hash are redirected to the registered phone, and the node's location
 *   record publishes the phone's contact.
 * - The phone authenticates (RFC 3261 22, sip/digest.ts): REGISTER is
 *   challenged with 401 and any phone user of the node's data directory may
 *   register the node's identity, unless the node runs with open
 *   registration; with no phone user at all every REGISTER is refused.
 * - What every SIP server shares (Max-Forwards, URI schemes, Require,
 *   OPTIONS, 405, 481) is the front door's (sip/front-door.ts).
 */
import type { PhoneAuth } from '../sip/digest.ts';
import type { IncomingRequest, SipElement } from '../sip/element.ts';
import { type RequestHandler, SipFrontDoor } from '../sip/front-door.ts';
import { formatNameAddr, getFrom, getTo, parseNameAddr } from '../sip/header-values.ts';
import { getHeader, type Header } from '../sip/message.ts';
import { bindingContact, type Registrar } from '../sip/registrar.ts';
import { directlyReachable, FLOW_FAILED, FlowTokens, flowOf, liveBindings } from '../sip/flow.ts';
import { FlowProxy, followedTarget } from '../sip/flow-proxy.ts';
import { formatUri, parseRequestUri } from '../sip/uri.ts';
import { peerOf } from '../sip/user-agent.ts';
import type { Clock } from '../util/clock.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { MAX_IM_BODY, type WhanauMessenger } from './instant-messages.ts';
import type { RecordLookup } from './whanau-daemon.ts';
import type { LocationRecord } from './location-record.ts';
import type { Peer } from '../sip/transport.ts';
import { logRefusal } from '../util/refusal.ts';
import { TokenBuckets } from '../util/token-bucket.ts';

const KEY_HASH_RE = /^[0-9a-fA-F]{40}$/;
/** The reason of the 403 a node with no phone user gives every REGISTER. */
export const NO_NODE_PHONE_USERS =
  'Forbidden: no phone users configured (add one with secp2psip node --data DIR --add-user NAME, or start with --open-registration)';

/**
 * The contact a node's location record publishes for its SIP URI `uri`: the phone registered as `uri` when callers
 * can reach it at its Contact, else `uri` (the node, which proxies over the phone's flow: behind a NAT, over TCP).
 */
export function publishedContact(registrar: Registrar | undefined, uri: string): string {
  if (registrar) {
    const own = parseRequestUri(uri);
    const b = own.ok ? registrar.lookup(own.value) : [];
    if (b.length > 0 && directlyReachable(b[0].contact.uri, b[0].flow)) return formatUri(b[0].contact.uri);
  }
  return uri;
}

export interface WhanauSipComponents {
  element: SipElement;
  clock: Clock;
  /** The DHT lookup of a key hash, returning only a verified record. */
  lookup(hash: string): Promise<RecordLookup>;
  /** Present in the node role: the registrar for the node's own phone(s). */
  registrar?: Registrar;
  /** Who may register the node's phone (node role); 'open' when absent. */
  auth?: PhoneAuth;
  /** Instant messages to other nodes (node role); without it MESSAGE is 405. */
  messenger?: WhanauMessenger;
  /**
   * SIP over the DHT link to another node (overlay/sip-over-ring.ts): `peerFor` names the pseudo peer standing
   * for the node a verified record belongs to when the call must go that way (it or we are behind a NAT);
   * `owns` tells a request that came that way.
   */
  ring?: { peerFor(record: LocationRecord): Peer | undefined; owns(peer: Peer): boolean };
  logger?: Logger;
}

export interface WhanauSipInit {
  /** The node's own identity (SHA-1 of its key): the only user that may register here. */
  ownHash: string;
}

export interface WhanauSipStats {
  invites: number;
  redirects: number;
  notFound: number;
  badHash: number;
  registers: number;
  refusedRegisters: number;
  lookupErrors: number;
  /** INVITEs carried to another node over the DHT link (a node behind a NAT). */
  overRing: number;
}

/** Messages a gateway relays per source address: a burst of 10, then one every 6 s. */
export const GATEWAY_MESSAGE_RATE = Object.freeze({ burst: 10, perSecond: 1 / 6 });

export class WhanauSipNode {
  readonly element: SipElement;
  readonly registrar: Registrar | undefined;
  readonly ownHash: string;
  readonly stats: WhanauSipStats = {
    invites: 0,
    redirects: 0,
    notFound: 0,
    badHash: 0,
    registers: 0,
    refusedRegisters: 0,
    lookupErrors: 0,
    overRing: 0,
  };
  /** Called after a REGISTER changed the bindings (the node republishes its record). */
  onBindingsChanged: () => void = () => {};
  private readonly lookup: (hash: string) => Promise<RecordLookup>;
  private readonly ring: WhanauSipComponents['ring'];
  private readonly log: Logger;
  private readonly auth: PhoneAuth;
  readonly door: SipFrontDoor;
  /** Proxying where a 302 would loop or could not reach the phone (sip/flow-proxy.ts). */
  readonly flows: FlowProxy;

  constructor(c: WhanauSipComponents, init: WhanauSipInit) {
    this.element = c.element;
    this.registrar = c.registrar;
    this.lookup = c.lookup;
    this.ring = c.ring;
    this.auth = c.auth ?? 'open';
    this.ownHash = init.ownHash.toLowerCase();
    this.log = (c.logger ?? silentLogger).child({ component: 'whanausip-sip', node: this.ownHash.slice(0, 8) });
    // A gateway takes no registrations: REGISTER is then 405 like any method it does not handle.
    const methods: Record<string, RequestHandler> = { INVITE: (inc) => this.invite(inc) };
    const registrar = this.registrar;
    if (registrar) methods.REGISTER = (inc) => this.register(inc, registrar);
    const messenger = c.messenger;
    if (messenger && registrar) methods.MESSAGE = (inc) => this.message(inc, messenger);
    else if (messenger) {
      const perSource = new TokenBuckets(c.clock, GATEWAY_MESSAGE_RATE);
      methods.MESSAGE = (inc) => this.relayMessage(inc, messenger, perSource);
    }
    this.flows = new FlowProxy({ element: c.element, tokens: new FlowTokens(), logger: this.log });
    this.door = new SipFrontDoor({
      element: c.element,
      logger: this.log,
      user: {
        methods,
        // A phone following our 302 back through us (outbound proxy) is proxied, not redirected again; a node
        // relays only for its own authenticated phone.
        relay: (inc) => this.flows.inDialog(inc) || this.flows.followed(inc, (i) => this.authorizeRelay(i)),
        onAck: (req) => this.flows.ack(req),
      },
    });
  }

  private authorizeRelay(inc: IncomingRequest): boolean {
    if (this.auth === 'open' || !this.registrar) return true;
    return this.auth.digest.authenticate(inc, true) !== undefined;
  }

  /** The node's own SIP URI: what a phone registers as and friends dial. */
  get uri(): string {
    return `sip:${this.ownHash}@${this.element.hostport}`;
  }

  /** The contact the node's location record should publish: the registered phone's, else the node itself. */
  currentContact(): string {
    return publishedContact(this.registrar, this.uri);
  }

  private register(inc: IncomingRequest, reg: Registrar): void {
    this.stats.registers++;
    const to = getTo(inc.request);
    if (!to.ok) {
      inc.respond(400, `Bad Request: ${to.error}`);
      return;
    }
    // Section 3.4.3: the phone registers as the node's own identity, nothing else.
    if ((to.value.uri.user ?? '').toLowerCase() !== this.ownHash) {
      this.stats.refusedRegisters++;
      logRefusal(this.log, 'wrong_user', inc.source, { as: to.value.uri.user }, 'phone refused: not this node');
      inc.respond(403, `Forbidden: only ${this.ownHash} registers here`);
      return;
    }
    if (this.auth !== 'open') {
      if (this.auth.users() === 0) {
        this.stats.refusedRegisters++;
        logRefusal(this.log, 'no_phone_users', inc.source, {}, 'phone refused: no phone users configured');
        inc.respond(403, NO_NODE_PHONE_USERS);
        return;
      }
      if (this.auth.digest.authenticate(inc, false) === undefined) return;
    }
    const out = reg.register(inc.request, flowOf(inc.source));
    inc.respond(out.status, out.reason, { headers: out.headers });
    if (out.status === 200) {
      this.log.info({ contact: this.currentContact() }, 'phone registration updated');
      this.onBindingsChanged();
    }
  }

  private async invite(inc: IncomingRequest): Promise<void> {
    this.stats.invites++;
    const uri = parseRequestUri(inc.request.uri);
    if (!uri.ok) {
      inc.respond(400, `Bad Request: ${uri.error}`);
      return;
    }
    const user = uri.value.user ?? '';
    if (!KEY_HASH_RE.test(user)) {
      // Section 4.7: only a SHA-1 hash is looked up.
      this.stats.badHash++;
      inc.respond(400, 'Bad Request: user part is not a 40-hex key hash');
      return;
    }
    const hash = user.toLowerCase();
    if (hash === this.ownHash && this.registrar) return this.redirectToPhone(inc, this.registrar);
    let found: RecordLookup;
    try {
      found = await this.lookup(hash);
    } catch (e) {
      this.stats.lookupErrors++;
      this.log.warn({ key: hash.slice(0, 8), err: (e as Error).message }, 'lookup failed');
      if (!inc.cancelled && !inc.finalSent) inc.respond(480, 'Temporarily Unavailable: lookup failed');
      return;
    }
    if (inc.cancelled || inc.finalSent) return;
    if (found.notReady) {
      inc.respond(480, 'Temporarily Unavailable: DHT not set up yet');
      return;
    }
    const contact = found.record ? parseNameAddr(`<${found.record.value}>`) : undefined;
    if (!contact?.ok) {
      this.stats.notFound++;
      this.log.info({ key: hash.slice(0, 8), messages: found.messages, tries: found.tries }, 'not found');
      inc.respond(404, 'Not Found');
      return;
    }
    const ring = found.record ? this.ring?.peerFor(found.record) : undefined;
    if (ring) {
      // The callee's node (or ours) is behind a NAT: no 302 its phone could follow; we carry the INVITE to that
      // node over the DHT link, which hands it to its phone, both of us staying in the path (Record-Route).
      this.stats.overRing++;
      this.log.info({ key: hash.slice(0, 8), messages: found.messages }, 'INVITE over the DHT link to its node');
      this.flows.forward(inc, inc.request.uri, ring);
      return;
    }
    this.stats.redirects++;
    const dest = peerOf(contact.value.uri);
    if (dest) this.flows.redirectedTo(contact.value.uri, dest);
    this.log.info({ key: hash.slice(0, 8), contact: found.record?.value, messages: found.messages }, 'redirect');
    // Section 4.7: the lookup result wrapped in a redirect; RFC 3261 21.3.3 302 Moved Temporarily.
    inc.respond(302, 'Moved Temporarily', { headers: [{ name: 'Contact', value: formatNameAddr(contact.value) }] });
  }

  /**
   * RFC 3428 MESSAGE from the node's own phone to `sip:<hash>@<this node>`: looked up and sent signed by the
   * node key (instant-messages.ts). Only the node's phone sends as the node: authenticated (407) unless the
   * node runs with open registration, and From must be the node's own identity.
   */
  private async message(inc: IncomingRequest, messenger: WhanauMessenger): Promise<void> {
    const req = inc.request;
    if (this.auth !== 'open' && this.auth.digest.authenticate(inc, true) === undefined) return;
    const from = getFrom(req);
    if (!from.ok || (from.value.uri.user ?? '').toLowerCase() !== this.ownHash) {
      inc.respond(403, `Forbidden: only ${this.ownHash} sends messages from this node`);
      return;
    }
    await this.sendMessage(inc, messenger);
  }

  /**
   * A gateway relays a MESSAGE from any SIP client to `sip:<hash>@<gateway>` (seed 003: the gateway serves
   * phones outside the social graph), signed by the gateway's own key: the recipient's phone sees the gateway's
   * identity as the sender, since nothing vouches for the client behind it. Its From is not believed. Limited per
   * source address, so the gateway is no open relay for floods.
   */
  private async relayMessage(inc: IncomingRequest, messenger: WhanauMessenger, perSource: TokenBuckets): Promise<void> {
    const source = inc.source.address;
    if (!perSource.take(source)) {
      const retry = Math.max(1, Math.ceil(perSource.waitMs(source) / 1000));
      logRefusal(this.log, 'message_rate', inc.source, { method: 'MESSAGE' }, 'gateway message refused: rate');
      inc.respond(503, 'Service Unavailable: too many messages from this address', {
        headers: [{ name: 'Retry-After', value: String(retry) }],
      });
      return;
    }
    await this.sendMessage(inc, messenger);
  }

  /** A MESSAGE the node or gateway may send: to a 40-hex key hash, within the size limit, signed and sent. */
  private async sendMessage(inc: IncomingRequest, messenger: WhanauMessenger): Promise<void> {
    const req = inc.request;
    const uri = parseRequestUri(req.uri);
    const to = uri.ok ? (uri.value.user ?? '').toLowerCase() : '';
    if (!KEY_HASH_RE.test(to)) {
      inc.respond(400, 'Bad Request: user part is not a 40-hex key hash');
      return;
    }
    if (req.body.length > MAX_IM_BODY) {
      inc.respond(413, `Request Entity Too Large: at most ${MAX_IM_BODY} bytes of message`);
      return;
    }
    const out = await messenger.send(to, getHeader(req, 'Content-Type'), req.body);
    if (!inc.finalSent) inc.respond(out.status, out.reason);
  }

  /** An INVITE for the node's own identity goes to the phone(s) registered here. */
  private redirectToPhone(inc: IncomingRequest, reg: Registrar): void {
    const own = parseRequestUri(this.uri);
    // RFC 5626 7: only flows still open (several flows of one phone: a live one); every one gone is 430.
    const { live: bindings, failed } = liveBindings(this.element.transport, own.ok ? reg.lookup(own.value) : []);
    if (failed) {
      inc.respond(FLOW_FAILED.status, FLOW_FAILED.reason);
      return;
    }
    if (bindings.length === 0) {
      inc.respond(480, 'Temporarily Unavailable: no phone registered');
      return;
    }
    // A phone only its flow reaches (or the 302 followed back to us) is proxied to: never a looping 302. So is an
    // INVITE another node carried to us over the DHT link (we are behind a NAT, or it is): a 302 it passed on
    // would send the caller's phone where it cannot go.
    const target =
      followedTarget(inc.request.uri, bindings) ??
      (this.ring?.owns(inc.source) || bindings.every((b) => !directlyReachable(b.contact.uri, b.flow))
        ? bindings[0]
        : undefined);
    const dest = target ? (target.flow ?? peerOf(target.contact.uri)) : undefined;
    if (target && dest) {
      this.flows.forward(inc, formatUri(target.contact.uri), dest);
      return;
    }
    const headers: Header[] = bindings.map((b) => ({ name: 'Contact', value: bindingContact(b) }));
    for (const b of bindings) {
      const to = b.flow ?? peerOf(b.contact.uri);
      if (to) this.flows.redirectedTo(b.contact.uri, to);
    }
    this.stats.redirects++;
    inc.respond(302, 'Moved Temporarily', { headers });
  }
}
