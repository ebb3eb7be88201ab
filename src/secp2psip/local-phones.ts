/**
 * The phones registered at an adapter, as its callee side needs them: the
 * SIP half registers them (RFC 3261 10.3, adapter.ts), the overlay half
 * reads their contacts for the 302 (callee.ts) through the `LocalPhones`
 * port it was built with, and never reaches into the SIP half.
 */
import { directlyReachable, type FlowTokens } from '../sip/flow.ts';
import { transportParam } from '../sip/flow-routes.ts';
import { formatNameAddr, formatParams } from '../sip/header-values.ts';
import type { SipRequest } from '../sip/message.ts';
import type { LiveBinding, RegisterOutcome, Registrar } from '../sip/registrar.ts';
import type { Peer, TransportName } from '../sip/transport.ts';
import { parseRequestUri } from '../sip/uri.ts';

export interface LocalPhones {
  /**
   * Contact header values for a 302 to the user's phones registered here; empty when none is. A phone a caller
   * cannot reach at its own Contact (behind a NAT, over a connection) is named by a URI of this adapter that routes
   * over the phone's flow; `callerTransport` is how the caller's phone sent its INVITE, `caller` who this adapter
   * verified it came from; `inPath`: name this adapter for every phone (the caller's adapter is behind a NAT and
   * carries the call's SIP to us over the ring).
   */
  contactsOf(name: string, callerTransport?: TransportName, caller?: string, inPath?: boolean): string[];
}

/** Between the callee's and the verified caller's name in an in-token's target (no user name has a `/`). */
export const VERIFIED_CALLER_SEPARATOR = '/';

/**
 * How a caller's phone that sent over `t` reaches a 302 target naming this adapter: the same transport when this
 * adapter takes it, TLS for a TLS or WebSocket caller (its adapter forwards a WebSocket phone's INVITE, and never
 * dials a WebSocket) when this adapter has TLS, else TCP for a stream, else UDP.
 */
function reachedOver(t: TransportName, route: PhoneRoute): TransportName {
  const offers = (x: TransportName) => x === 'UDP' || x === 'TCP' || route.offers?.(x) === true;
  if (t === 'UDP' || t === 'TCP') return t;
  if (offers('TLS')) return 'TLS';
  return 'TCP';
}

/** The token kind of a 302 target that this adapter routes to its own user's phone over its flow. */
export const INBOUND_TOKEN = 'in';
/** How long a 302 target naming this adapter stays usable (ms): the caller's phone follows it at once. */
export const TARGET_TOKEN_TTL_MS = 5 * 60_000;

/** What RegisteredPhones needs to name this adapter in a 302 (the adapter's advertised SIP address and its tokens). */
export interface PhoneRoute {
  /** This adapter's SIP address for `transport` (TLS and WebSocket listen on ports of their own). */
  hostport(transport?: TransportName): string;
  /** Whether this adapter takes `transport` from phones (default: UDP and TCP only). */
  offers?(transport: TransportName): boolean;
  tokens: FlowTokens;
  wallNow(): number;
  /**
   * The adapter is itself behind a NAT (its advertised address is a forwarded one, not its own): its phones sit
   * behind that NAT too, so none is reachable at its Contact from outside, whatever the Contact says.
   */
  behindNat?: boolean;
}

/** The registrar's bindings, found by user name (user name -> the address-of-record its phone registered). */
export class RegisteredPhones implements LocalPhones {
  private readonly aors = new Map<string, string>();

  constructor(
    readonly registrar: Registrar,
    private readonly route?: PhoneRoute,
  ) {}

  /** A REGISTER from `name`'s phone for `sip:name@host`, arrived over `flow`; on 200 its bindings answer for the user. */
  register(name: string, host: string, req: SipRequest, flow?: Peer): RegisterOutcome {
    const out = this.registrar.register(req, flow);
    if (out.status === 200) this.aors.set(name, `sip:${name}@${host}`);
    return out;
  }

  /** After a restart: answer for `name` with the bindings of `aor` the registrar got back from its store. */
  restore(name: string, aor: string): void {
    this.aors.set(name, aor);
  }

  /** Drop the user and every binding of `aors`. */
  drop(name: string, aors: readonly string[]): void {
    for (const aor of aors) this.registrar.removeAor(aor);
    this.aors.delete(name);
  }

  /** The user's current bindings, with the flows they registered over. */
  bindingsOf(name: string): LiveBinding[] {
    const aor = this.aors.get(name);
    const u = aor ? parseRequestUri(aor) : undefined;
    return u?.ok ? this.registrar.lookup(u.value) : [];
  }

  contactsOf(name: string, callerTransport: TransportName = 'UDP', caller?: string, inPath = false): string[] {
    const route = this.route;
    const over = route ? reachedOver(callerTransport, route) : 'UDP';
    return this.bindingsOf(name).map((b) => {
      // The phone's preference (q, RFC 3261 20.10) goes into the 302; the registrar's own parameters do not.
      const q = b.contact.params.filter(([n]) => n === 'q');
      if (!route || (!route.behindNat && !inPath && directlyReachable(b.contact.uri, b.flow)))
        return formatNameAddr({ ...b.contact, params: q });
      // Not reachable at its Contact: the caller's phone comes to us and we go on over the phone's flow.
      // The token also names the caller this adapter verified, for the callee's display (phone-flows.ts).
      const target = caller === undefined ? name : `${name}${VERIFIED_CALLER_SEPARATOR}${caller}`;
      const token = route.tokens.target(INBOUND_TOKEN, target, route.wallNow() + TARGET_TOKEN_TTL_MS);
      const uri = `sip:${token}@${route.hostport(over)}${transportParam(over)}`;
      return `<${uri}>${formatParams(q)}`;
    });
  }
}
