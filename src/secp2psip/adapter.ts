/**
 * The SIP half of a SecP2PSIP adapter (seed 000 IV.1): a registrar for the
 * local phone, and the caller side of session establishment.
 *
 * - REGISTER: on a user's first REGISTER, register the user with the
 *   bootstrap (adapter-node.ts), then record the binding (RFC 3261 10.3) and
 *   answer 200 OK (seed IV.2 "SIP Client Registered").
 * - INVITE to `sip:userB@<adapter>`: 100 Trying (the element), then the
 *   caller's side of the verified flow (caller.ts `placeCall`); a verified
 *   302 or the mapped error status. The callee's side answers other
 *   adapters over RPC in the overlay half (adapter-node.ts, callee.ts) and
 *   reads the phones registered here through the same `RegisteredPhones`.
 *   CANCEL at any step aborts the flow (487 from the element).
 * - A request whose Request-URI is a contact this adapter verified earlier
 *   (a phone using its adapter as outbound proxy follows the 302 back through
 *   it) is proxied there (RFC 3261 16), never redirected again: the
 *   requests relayed rather than answered are adapter-relay.ts.
 * - After a restart, the users of the phone bindings that came back are
 *   registered with the bootstrap again (adapter-restore.ts) while phones
 *   get 503 with Retry-After.
 */
import type { PhoneAuth } from '../sip/digest.ts';
import type { IncomingRequest, SipElement } from '../sip/element.ts';
import { sipReasonOf, sipStatusOf } from '../sip/error-status.ts';
import { SipFrontDoor } from '../sip/front-door.ts';
import { getFrom, getTo, parseNameAddr } from '../sip/header-values.ts';
import { getHeader, getHeaders } from '../sip/message.ts';
import { FlowTokens, flowOf } from '../sip/flow.ts';
import { FlowProxy } from '../sip/flow-proxy.ts';
import type { FacingAddress } from '../sip/flow-routes.ts';
import type { StatefulProxy } from '../sip/proxy.ts';
import type { Registrar } from '../sip/registrar.ts';
import { formatUri, parseRequestUri } from '../sip/uri.ts';
import type { Clock } from '../util/clock.ts';
import { isOverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { type AdapterNode, retryAfterOf } from './adapter-node.ts';
import { AdapterRelay } from './adapter-relay.ts';
import { UserRestore } from './adapter-restore.ts';
import type { LocalUser } from './call-common.ts';
import { type CallObserver, type CallRecord, callRecordOf } from './call-record.ts';
import { placeCall } from './caller.ts';
import type { OverlaySip } from '../overlay/sip-over-ring.ts';
import { isRelayAddr } from '../rpc/relay.ts';
import { relayPhoneMessage } from './phone-messages.ts';
import { acceptPublish, type PhoneSubscriptions } from './phone-presence.ts';
import type { RegisteredPhones } from './local-phones.ts';
import { PhoneFlows } from './phone-flows.ts';
import { isUsableUserName } from './messages.ts';
import { logRefusal } from '../util/refusal.ts';

export { RESTORE_RETRY_FIRST_MS, RESTORE_RETRY_MAX_MS } from './adapter-restore.ts';

/** The REGISTER header a phone carries its enrolment token in (a token from `secp2psip bootstrap --invite`). */
export const INVITE_HEADER = 'X-Secp2psip-Invite';
/** Why a REGISTER's user name was refused (wire-fields.ts NAME_RE), as a reason phrase. */
const USER_NAME_RULE =
  "not a usable user name (1-64 letters, digits and - _ . ! ~ * ' ( ) +, not starting with '.' nor ending in '.<digits>')";
/** Seconds a phone is asked to wait when the adapter cannot serve it yet (RFC 3261 20.33). */
export const NOT_READY_RETRY_AFTER_S = 2;

/** The reason of the 403 an adapter with no phone user gives every REGISTER. */
export const NO_PHONE_USERS =
  'Forbidden: no phone users configured (add one with secp2psip adapter --data DIR --add-user NAME, or start with --open-registration)';

export class Adapter {
  readonly node: AdapterNode<RegisteredPhones>;
  readonly element: SipElement;
  readonly registrar: Registrar;
  readonly proxy: StatefulProxy;
  /** Calls whose phones are reached over their flows (phone-flows.ts). */
  readonly flows: PhoneFlows;
  readonly door: SipFrontDoor;
  readonly stats = { registers: 0, invites: 0, messages: 0, redirects: 0, refused: 0, proxied: 0, busy: 0 };
  /** Recent call outcomes (for the demo). */
  readonly calls: CallRecord[] = [];
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly phones: RegisteredPhones;
  /** False while a restart registers its users again (holdUntilReady): phones get 503 with Retry-After. */
  private ready = true;
  private readonly auth: PhoneAuth;
  private readonly subscriptions?: PhoneSubscriptions;
  private readonly onCall?: CallObserver;
  private readonly overlay?: OverlaySip;
  private readonly relayed: boolean;
  /** Users restored after a restart and their registration retries (adapter-restore.ts). */
  private readonly restore: UserRestore;
  /** The requests relayed rather than answered (adapter-relay.ts). */
  private readonly relaying: AdapterRelay;

  /** `node.phones` is where this half registers phones, and where the callee side finds them. */
  constructor(c: {
    node: AdapterNode<RegisteredPhones>;
    element: SipElement;
    clock: Clock;
    /** Who may register and call here; see PhoneAuth. */
    auth: PhoneAuth;
    /** The phones' presence subscriptions (the node's `presencePhones`); without it SUBSCRIBE and PUBLISH are 405. */
    subscriptions?: PhoneSubscriptions;
    /** The flow-token secret shared with `node.phones` (its 302 targets name this adapter); a fresh one by default. */
    tokens?: FlowTokens;
    /** The adapter is behind a NAT itself (its advertised address forwards to it): it stays in every call's path. */
    behindNat?: boolean;
    /** The address a phone on our LAN reaches us at, when not the advertised one (flow-routes.ts). */
    facing?: FacingAddress;
    /**
     * SIP to other adapters over the ring (overlay/sip-over-ring.ts), used for calls where either adapter is behind a NAT
     * (this one when `relayed`, or the callee's when its ring address names relays).
     */
    overlay?: OverlaySip;
    /** This adapter is on the ring as a client, through relays (roles.ts). */
    relayed?: boolean;
    logger?: Logger;
    /** Told about each call's outcome and steps (metrics, the dashboard). */
    onCall?: CallObserver;
  }) {
    this.node = c.node;
    this.overlay = c.overlay;
    this.relayed = c.relayed ?? false;
    this.onCall = c.onCall;
    this.auth = c.auth;
    this.subscriptions = c.subscriptions;
    this.element = c.element;
    this.phones = c.node.phones;
    this.registrar = c.node.phones.registrar;
    this.clock = c.clock;
    this.log = (c.logger ?? silentLogger).child({ component: 'adapter-sip' });
    const tokens = c.tokens ?? new FlowTokens();
    const flowProxy = new FlowProxy({ element: c.element, tokens, facing: c.facing, logger: this.log });
    this.proxy = flowProxy.proxy;
    this.flows = new PhoneFlows({
      element: c.element,
      tokens,
      flowProxy,
      phones: c.node.phones,
      wallNow: () => c.clock.wallNow(),
      log: this.log,
      behindNat: c.behindNat,
    });
    // What every SIP server shares is the front door's; a phone's redirected request is relayed before it.
    this.door = new SipFrontDoor({
      element: c.element,
      logger: this.log,
      user: {
        methods: {
          REGISTER: (inc) => this.register(inc),
          INVITE: (inc) => this.invite(inc),
          MESSAGE: (inc) => this.message(inc),
          ...(c.subscriptions
            ? {
                SUBSCRIBE: (inc: IncomingRequest) => this.subscribe(inc),
                PUBLISH: (inc: IncomingRequest) => this.publish(inc),
              }
            : {}),
        },
        // While restarting, every phone request but OPTIONS gets 503 with Retry-After, before anything else.
        relay: (inc) => {
          if (this.ready || inc.request.method === 'OPTIONS') return this.relaying.relay(inc);
          respondNotReady(inc, 'adapter starting');
          return true;
        },
        onAck: (req, source) => this.relaying.forwardAck(req, source),
      },
    });
    this.restore = new UserRestore({ node: c.node, clock: c.clock, log: this.log });
    this.relaying = new AdapterRelay({
      element: c.element,
      proxy: this.proxy,
      flows: this.flows,
      subscriptions: c.subscriptions,
      auth: c.auth,
      clock: c.clock,
      stats: this.stats,
      fromIs: (inc, user) => this.fromIs(inc, user),
    });
  }

  /** After a restart: register the users of the restored phone bindings again (adapter-restore.ts). */
  restoreUsers(): Promise<{ users: number; failed: number }> {
    return this.restore.restoreUsers();
  }

  /** Users whose registration with the bootstrap after a restart is still being retried. */
  get retrying(): string[] {
    return [...this.node.restoring];
  }

  /** Until `setReady`, every phone request but OPTIONS gets 503 with Retry-After (a restart in progress). */
  holdUntilReady(): void {
    this.ready = false;
    this.node.ready = false;
  }

  setReady(): void {
    this.ready = true;
    this.node.ready = true;
  }

  /** Cancel pending registration retries (the adapter is closing). */
  stopRetries(): void {
    this.restore.stopRetries();
  }

  /**
   * The authenticated `user` must be who the request's From names (RFC 3261 22: the caller is the authenticated
   * user, not the From header); otherwise 403 and false.
   */
  private fromIs(inc: IncomingRequest, user: string): boolean {
    const from = getFrom(inc.request);
    const name = from.ok ? (from.value.uri.user ?? '') : '';
    if (name === user) return true;
    logRefusal(this.log, 'wrong_user', inc.source, { user, as: name, method: inc.request.method }, 'phone refused');
    inc.respond(403, `Forbidden: authenticated as ${user}, not ${name || 'the From user'}`.replace(/[\r\n]/g, ' '));
    return false;
  }

  private async register(inc: IncomingRequest): Promise<void> {
    this.stats.registers++;
    const to = getTo(inc.request);
    if (!to.ok) {
      inc.respond(400, `Bad Request: ${to.error}`);
      return;
    }
    const name = to.value.uri.user ?? '';
    if (!isUsableUserName(name)) {
      inc.respond(404, `Not Found: ${USER_NAME_RULE}`);
      return;
    }
    if (this.auth !== 'open') {
      if (this.auth.users() === 0) {
        logRefusal(this.log, 'no_phone_users', inc.source, { user: name }, 'phone refused: no phone users configured');
        inc.respond(403, NO_PHONE_USERS);
        return;
      }
      const user = this.auth.digest.authenticate(inc, false);
      if (user === undefined) return;
      // RFC 3261 10.3 step 3: the authenticated user may only change the bindings of its own address of record.
      if (user !== name) {
        logRefusal(this.log, 'wrong_user', inc.source, { user, as: name, method: 'REGISTER' }, 'phone refused');
        inc.respond(403, `Forbidden: authenticated as ${user}, cannot register ${name}`);
        return;
      }
    }
    try {
      // An enrolment token for a new name travels in X-Secp2psip-Invite (bootstrap --require-invite).
      await this.node.ensureUser(name, getHeader(inc.request, INVITE_HEADER)?.trim());
    } catch (e) {
      const status = sipStatusOf(e);
      const reason = sipReasonOf(e);
      // Overload (too many new names at once, the bootstrap busy or slow to answer) is temporary:
      // 503 with Retry-After (RFC 3261 21.5.4) makes the phone come back later instead of giving up.
      if (status === 503 || status === 408) {
        this.stats.busy++;
        // Spread the phones' returns over a few seconds, so they do not all come back in one burst again.
        // A new-name rate refusal says when a name may come (RFC 3261 21.5.4 Retry-After), with its reason.
        const retry = retryAfterOf(e) ?? 1 + (this.stats.busy % 4);
        const phrase =
          isOverlayError(e, 'USER_NAME_RATE') || isOverlayError(e, 'REGISTRY_UNAVAILABLE')
            ? reason
            : 'Service Unavailable';
        this.log.debug({ user: name, reason, retry }, 'registration deferred: overloaded');
        inc.respond(503, phrase, { headers: [{ name: 'Retry-After', value: String(retry) }] });
        return;
      }
      this.log.warn({ user: name, reason }, 'registration with the bootstrap failed');
      inc.respond(status === 404 ? 403 : status, reason);
      return;
    }
    this.restore.registered(name);
    const before = this.phones.bindingsOf(name).length;
    const out = this.phones.register(name, to.value.uri.host, inc.request, flowOf(inc.source));
    inc.respond(out.status, out.reason, { headers: out.headers });
    // Registered, refreshed or unregistered: the user's watchers hear of a change (presence.ts).
    if (out.status === 200) this.node.presence.changed(name);
    // A phone is there: messages stored for the user while offline are delivered to it now (mailbox.ts).
    if (out.status === 200 && this.phones.bindingsOf(name).length > 0)
      this.node.mailbox.collectIfDue(name, before === 0)?.catch((e: unknown) => {
        this.log.warn({ user: name, reason: (e as Error).message }, 'mailbox not collected');
      });
  }

  private async invite(inc: IncomingRequest): Promise<void> {
    this.stats.invites++;
    const started = this.clock.now();
    const req = inc.request;
    const uri = parseRequestUri(req.uri);
    const from = getFrom(req);
    if (!uri.ok || !from.ok) {
      inc.respond(400, 'Bad Request');
      return;
    }
    const caller = this.sender(inc, from.value.uri.user ?? '');
    if (!caller) return;
    const callerName = caller.name;
    const calleeName = uri.value.user ?? '';
    const out = await placeCall(this.node.caller, req, caller, calleeName, () => inc.cancelled);
    if (inc.cancelled || inc.finalSent) return;
    if (out.ok) {
      for (const c of getHeaders(out.response, 'Contact')) {
        const n = parseNameAddr(c);
        if (n.ok) this.relaying.verifiedContact(n.value.uri);
      }
      this.stats.redirects++;
      // Either adapter behind a NAT: both stay in the path and the call's SIP between them goes over the ring.
      const overRing =
        this.overlay !== undefined && (this.relayed || isRelayAddr(out.callee.adapter.addr))
          ? this.overlay.peerFor(out.callee.adapter)
          : undefined;
      if (overRing)
        for (const c of getHeaders(out.response, 'Contact')) {
          const n = parseNameAddr(c);
          if (n.ok) this.flows.routeOverRing(formatUri(n.value.uri), overRing);
        }
      // A phone we cannot reach at its Contact gets targets naming us, so that we stay in its call's path.
      // A browser phone does not follow a 302: over a WebSocket, the adapter follows it for the phone.
      const ws = inc.source.transport === 'WS' || inc.source.transport === 'WSS';
      if (!ws || !this.flows.followRedirect(inc, out.response))
        inc.sendResponse(
          this.flows.rewrite302(out.response, inc.source, getHeader(req, 'Contact'), overRing !== undefined),
        );
    } else {
      this.stats.refused++;
      if (out.status === 503) respondNotReady(inc, out.reason);
      // A failure that passes (too few key pieces answered while the ring repairs): 480 with Retry-After.
      else if (out.retryAfterS !== undefined)
        inc.respond(out.status, out.reason, { headers: [{ name: 'Retry-After', value: String(out.retryAfterS) }] });
      else inc.respond(out.status, out.reason);
    }
    const ms = this.clock.now() - started;
    const record = callRecordOf(
      out,
      { caller: callerName, callee: calleeName, mode: this.node.mode, ms },
      req,
      this.clock,
    );
    this.calls.push(record);
    if (this.calls.length > 1000) this.calls.shift();
    this.onCall?.(record);
  }

  /**
   * The local user a phone's INVITE or MESSAGE is sent as: the authenticated user (challenged with 407), who must
   * be the From user and registered here; otherwise the phone has its answer and the result is undefined.
   */
  private sender(inc: IncomingRequest, fromUser: string): LocalUser | undefined {
    let name = fromUser;
    if (this.auth !== 'open') {
      const user = this.auth.digest.authenticate(inc, true);
      if (user === undefined || !this.fromIs(inc, user)) return undefined;
      name = user;
    }
    const user = this.node.users.get(name);
    if (!user && this.node.restoring.has(name)) respondNotReady(inc, `${name} is being registered again`);
    else if (!user) {
      logRefusal(this.log, 'not_registered', inc.source, { user: name }, 'phone refused: caller not registered');
      inc.respond(403, `Forbidden: ${name || 'caller'} is not registered at this adapter`);
    }
    return user;
  }

  /** RFC 3428 MESSAGE from a phone to `sip:<user>@<adapter>`: sent through the overlay (phone-messages.ts). */
  private async message(inc: IncomingRequest): Promise<void> {
    this.stats.messages++;
    const from = getFrom(inc.request);
    if (!from.ok) {
      inc.respond(400, `Bad Request: ${from.error}`);
      return;
    }
    const sender = this.sender(inc, from.value.uri.user ?? '');
    if (sender) await relayPhoneMessage(this.node.messaging, inc, sender);
  }

  /** RFC 3856 SUBSCRIBE for `presence` from a phone: watched through the overlay (phone-presence.ts). */
  private async subscribe(inc: IncomingRequest): Promise<void> {
    const from = getFrom(inc.request);
    if (!from.ok) {
      inc.respond(400, `Bad Request: ${from.error}`);
      return;
    }
    // Phones subscribe as they start, while their REGISTER may still be on its way to the bootstrap: wait for it.
    const name = from.value.uri.user ?? '';
    await this.node.registering(name)?.catch(() => undefined);
    const watcher = this.sender(inc, name);
    if (watcher && this.subscriptions) await this.subscriptions.subscribe(inc, watcher, this.node.presence);
  }

  /** RFC 3903 PUBLISH from a phone: its user's status and note (phone-presence.ts). */
  private publish(inc: IncomingRequest): void {
    const from = getFrom(inc.request);
    const user = from.ok ? this.sender(inc, from.value.uri.user ?? '') : undefined;
    if (!from.ok) inc.respond(400, `Bad Request: ${from.error}`);
    if (user) acceptPublish(inc, user, this.node.presence);
  }
}

/** 503 with Retry-After (RFC 3261 21.5.4): the phone may try again shortly. */
export function respondNotReady(inc: IncomingRequest, reason: string): void {
  inc.respond(503, `Service Unavailable: ${reason}`.replace(/[\r\n]/g, ' '), {
    headers: [{ name: 'Retry-After', value: String(NOT_READY_RETRY_AFTER_S) }],
  });
}
