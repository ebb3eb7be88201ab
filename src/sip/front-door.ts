/**
 * The UAS front door every SIP server of the product stands behind: the
 * registrar/redirect server, the SecP2PSIP adapter and the WhanauSIP node or
 * gateway. It owns what RFC 3261 asks of any UAS before the request reaches
 * the server's own logic, so the three cannot drift apart:
 *
 * 1. Max-Forwards 0 on a request it would act on: 483 (16.3 step 3; OPTIONS
 *    may still be answered).
 * 2. A method the server does not handle: 405 with an Allow that lists
 *    exactly what it handles (8.2.1).
 * 3. A Request-URI scheme other than sip/sips (tel: included): 416 (8.2.2.1).
 * 4. A Require option it does not support: 420 with Unsupported (8.2.2.3).
 * 5. BYE, or any request carrying a To tag (a request inside a dialog): none
 *    of these servers holds dialogs, so 481 (12.2.2, 15.1.2).
 * 6. OPTIONS: 200 with Allow and Accept (11.2).
 *
 * Everything else goes to the handler the server registered for its method.
 * A server that relays some requests (the adapter proxies a phone's
 * redirected INVITE, RFC 3261 16) claims them first through `relay`: a proxy
 * applies its own checks (16.3), not a UAS's. The front door's responses,
 * and the responses the server's handlers send, carry a Server header (20.35).
 */
import type { Logger } from '../util/log.ts';
import type { IncomingRequest, SipElement } from './element.ts';
import { getMaxForwards, getTag, getTo } from './header-values.ts';
import { getHeader, getHeaders, type SipRequest } from './message.ts';
import type { Peer } from './transport.ts';

export type RequestHandler = (inc: IncomingRequest) => void | Promise<void>;

/** What a server plugs into its front door. */
export interface FrontDoorUser {
  /** The methods the server answers itself (e.g. REGISTER, INVITE), each with its handler. */
  methods: Readonly<Record<string, RequestHandler>>;
  /** Takes the requests the server relays rather than answers (returns true when it took one). */
  relay?(inc: IncomingRequest): boolean;
  /** An ACK matching no transaction (the ACK for a 2xx, RFC 3261 13.2.2.4). */
  onAck?(req: SipRequest, source: Peer): void;
}

export interface FrontDoorInit {
  /** Option tags the server supports (RFC 3261 8.2.2.3); none by default. */
  supported?: readonly string[];
  /** Server header value (RFC 3261 20.35); the element's product name by default. */
  server?: string;
}

/** Requests the front door answered itself, by status. */
export interface FrontDoorStats {
  tooManyHops: number;
  notAllowed: number;
  unsupportedScheme: number;
  badExtension: number;
  noDialog: number;
  options: number;
}

/** Methods every element handles through its transaction layer: ACK (17.2.1) and CANCEL (9.2), plus OPTIONS here. */
const ALWAYS = ['ACK', 'CANCEL', 'OPTIONS'];

/**
 * The Allow header value for a server handling `methods`: INVITE, ACK, CANCEL, OPTIONS first (in the order
 * RFC 3261 examples use), then the others in the given order.
 */
export function allowList(methods: Iterable<string>): string {
  const own = [...methods].map((m) => m.toUpperCase());
  const first = own.includes('INVITE') ? ['INVITE'] : [];
  const rest = own.filter((m) => m !== 'INVITE' && !ALWAYS.includes(m));
  return [...first, ...ALWAYS, ...rest].join(', ');
}

/**
 * Option tags of the request's Require header fields that are not in `supported` (RFC 3261 8.2.2.3, 20.32),
 * each once, in the order the request lists them. Option tags are tokens, compared as written.
 */
export function unsupportedRequire(req: SipRequest, supported: readonly string[] = []): string[] {
  // Almost no request carries Require: no list is built for those.
  if (getHeader(req, 'Require') === undefined) return [];
  const values = getHeaders(req, 'Require');
  const out: string[] = [];
  for (const v of values)
    for (const raw of v.split(',')) {
      const tag = raw.trim();
      if (tag !== '' && !supported.includes(tag) && !out.includes(tag)) out.push(tag);
    }
  return out;
}

/** True when the Request-URI's scheme is sip or sips (compared case-insensitively, RFC 3261 19.1.4). */
function sipScheme(uri: string): boolean {
  const colon = uri.indexOf(':');
  if (colon === 3) return uri.slice(0, 3).toLowerCase() === 'sip';
  if (colon === 4) return uri.slice(0, 4).toLowerCase() === 'sips';
  return false;
}

/** Whether the request's To carries a tag, i.e. the request claims to be inside a dialog (RFC 3261 12.2). */
function inDialog(req: SipRequest): boolean {
  const values = getHeaders(req, 'To');
  // Most requests outside a dialog have no ";tag" in To at all: no need to parse them.
  if (values.length !== 1 || !/;[ \t]*tag/i.test(values[0])) return false;
  const to = getTo(req);
  return to.ok && getTag(to.value) !== undefined;
}

/** A server's front door: it installs itself as the element's request hook and calls the server's handlers. */
export class SipFrontDoor {
  /** The Allow header value: exactly what this server handles. */
  readonly allow: string;
  readonly stats: FrontDoorStats = {
    tooManyHops: 0,
    notAllowed: 0,
    unsupportedScheme: 0,
    badExtension: 0,
    noDialog: 0,
    options: 0,
  };
  private readonly user: FrontDoorUser;
  private readonly methods: Map<string, RequestHandler>;
  private readonly supported: readonly string[];
  private readonly server: string;
  private readonly log: Logger;

  constructor(components: { element: SipElement; user: FrontDoorUser; logger?: Logger }, init: FrontDoorInit = {}) {
    this.user = components.user;
    this.methods = new Map(Object.entries(components.user.methods).map(([m, h]) => [m.toUpperCase(), h]));
    this.allow = allowList(this.methods.keys());
    this.supported = init.supported ?? [];
    this.server = init.server ?? components.element.product;
    this.log = components.logger ?? components.element.log;
    const onAck = components.user.onAck;
    components.element.handle({
      onRequest: (inc) => this.onRequest(inc),
      onAck: onAck ? (req, source) => onAck(req, source) : undefined,
    });
  }

  /** The element's request hook: the checks above in RFC 3261 order, then the server's handler. */
  onRequest(inc: IncomingRequest): void | Promise<void> {
    if (this.user.relay?.(inc)) return;
    const req = inc.request;
    const method = req.method;
    inc.serverName = this.server;
    if (this.log.isLevelEnabled('debug'))
      this.log.debug({ method, uri: req.uri, from: `${inc.source.address}:${inc.source.port}` }, 'request');
    // 16.3 step 3 / 8.2: a request that has run out of hops is refused; "If the request is an OPTIONS request,
    // the element MAY act as the final recipient and respond".
    if (method !== 'OPTIONS' && getMaxForwards(req) === 0) {
      this.stats.tooManyHops++;
      inc.respond(483, 'Too Many Hops');
      return;
    }
    const handler = this.methods.get(method);
    const dialog = method === 'BYE' || inDialog(req);
    // 8.2.1: "If a UAS recognizes but does not support a method, it MUST generate a 405 ... The UAS MUST also add
    // an Allow header field to the 405". A request inside a dialog is not refused for its method: there is no
    // dialog for it to belong to (481 below).
    if (handler === undefined && method !== 'OPTIONS' && !dialog) {
      this.stats.notAllowed++;
      inc.respond(405, 'Method Not Allowed', { headers: [{ name: 'Allow', value: this.allow }] });
      return;
    }
    // 8.2.2.1: "If the Request-URI uses a scheme not supported by the UAS, it SHOULD reject the request with a
    // 416 (Unsupported URI Scheme) response."
    if (!sipScheme(req.uri)) {
      this.stats.unsupportedScheme++;
      inc.respond(416, 'Unsupported URI Scheme');
      return;
    }
    // 8.2.2.3: "If a UAS does not understand an option-tag listed in a Require header field, it MUST respond by
    // generating a response with status code 420 (Bad Extension). The UAS MUST add an Unsupported header field".
    const unknown = unsupportedRequire(req, this.supported);
    if (unknown.length > 0) {
      this.stats.badExtension++;
      inc.respond(420, 'Bad Extension', { headers: [{ name: 'Unsupported', value: unknown.join(', ') }] });
      return;
    }
    // 12.2.2: "If the UAS wishes to reject the request because it does not wish to recreate the dialog, it MUST
    // respond to the request with a 481 (Call/Transaction Does Not Exist)"; 15.1.2: "If the BYE does not match
    // an existing dialog, the UAS core SHOULD generate a 481". REGISTER is never part of a dialog (10.2).
    if (dialog && method !== 'REGISTER') {
      this.stats.noDialog++;
      inc.respond(481, 'Call/Transaction Does Not Exist');
      return;
    }
    if (method === 'OPTIONS' && handler === undefined) {
      // 11.2: the response to OPTIONS lists the capabilities: Allow, Accept, Supported.
      this.stats.options++;
      inc.respond(200, 'OK', {
        headers: [
          { name: 'Allow', value: this.allow },
          { name: 'Accept', value: 'application/sdp' },
        ],
      });
      return;
    }
    return (handler as RequestHandler)(inc);
  }
}
