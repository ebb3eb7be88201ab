/**
 * The overlay half of a SecP2PSIP adapter: its ring membership, its users'
 * keys, registration with the bootstrap (seed 000 IV.2 "Key-Pair Generation",
 * "SecP2PSIP Registration Request") and the callee side of session
 * establishment over RPC (callee.ts). The SIP half (adapter.ts) sits on top
 * and places calls through `caller` (caller.ts); what this half needs of the
 * other comes in through its constructor: the phones registered here
 * (`LocalPhones`) and where users' keys live (`UserKeyStore`).
 *
 * Registering users with the bootstrap set is user-registration.ts, which
 * this half owns and serves through its own methods; the RPC exchange with
 * a bootstrap (ADMIT, REGISTER, WHOIS) is bootstrap-exchange.ts. Both are
 * re-exported here for the callers that import them from this half.
 */
import type { ChordNode } from '../dht/chord/chord-node.ts';
import { ReplayCache } from '../identity/replay-cache.ts';
import { isRelayAddr } from '../rpc/relay.ts';
import type { Caller, Payload, RequestHandler, RpcEndpoint } from '../rpc/types.ts';
import type { Clock } from '../util/clock.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import type { Random } from '../util/random.ts';
import { SECP2PSIP_METHOD } from './bootstrap-server.ts';
import type { FlowEvent, LocalUser, SecurityMode } from './call-common.ts';
import { answerOpenedInvite, type CalleeContext } from './callee.ts';
import { openRequest } from './call-common.ts';
import { answerIm, type MessagingContext, type PhoneInbox } from './messaging.ts';
import { type PhonePresence, PresenceService } from './presence.ts';
import { type DeliveredLog, Mailbox, MemoryDeliveredLog } from './mailbox.ts';
import { MAILBOX_TTL_MS } from './mailbox-records.ts';
import type { CallerContext } from './caller.ts';
import type { RebuildMode } from './key-lookup.ts';
import { type AdmittedMsg, type BootstrapInfo, encodeMessage, type UserKeyBundle } from './messages.ts';
import type { LocalPhones } from './local-phones.ts';
import type { TrustStore } from './trust-store.ts';
import { MemoryUserKeys, type UserKeyStore } from './user-keys.ts';
import { UserRegistration } from './user-registration.ts';
import { VerifiedUsers } from './verified-users.ts';

export { bootstrapRef, exchange, requestAdmission } from './bootstrap-exchange.ts';
export { MAX_PENDING_REGISTRATIONS, retryAfterOf } from './user-registration.ts';

export interface AdapterNodeComponents<P extends LocalPhones = LocalPhones> {
  endpoint: RpcEndpoint;
  ring: ChordNode;
  trust: TrustStore;
  /** The users' phones registered at this adapter (the 302's contacts). */
  phones: P;
  /** Where users' keys live (default: in memory, a new key on every registration). */
  keys?: UserKeyStore;
  /** Where verified instant messages go to the users' phones (absent: messages to them are refused). */
  inbox?: PhoneInbox;
  /** The phones' presence subscriptions and registrations (presence.ts). */
  presencePhones?: PhonePresence;
  /** Nonces of the messages delivered here (mailbox.ts; default: in memory). */
  delivered?: DeliveredLog;
  clock: Clock;
  random: Random;
  logger?: Logger;
}

export interface AdapterNodeInit {
  admitted: AdmittedMsg;
  /** The bootstrap this adapter registers with (it forwards to the name's authority). */
  bootstrap: BootstrapInfo;
  /** This adapter's SIP host:port (seed Table 1 "IP"). */
  sipAddr: string;
  mode?: SecurityMode;
  rebuild?: RebuildMode;
  timeoutMs?: number;
  windowMs?: number;
  /** Told about every verified INVITE and REDIRECT (the demo prints them). */
  onEvent?: (e: FlowEvent) => void;
  /** How long a user verified through the ring is reused by later calls (ms; default 0: every call looks up). */
  cacheMs?: number;
  /** New names (no key kept yet) sent to the bootstrap per minute, a burst of this many then spread (0/absent: no cap). */
  newNamesPerMinute?: number;
  /** How long a message stored for an offline user lives in the ring (ms; default and most: 7 days). */
  mailboxTtlMs?: number;
}

export class AdapterNode<P extends LocalPhones = LocalPhones> {
  readonly endpoint: RpcEndpoint;
  readonly ring: ChordNode;
  readonly trust: TrustStore;
  readonly phones: P;
  readonly users = new Map<string, LocalUser>();
  readonly bootstraps: BootstrapInfo[];
  readonly bootstrapKeys: Uint8Array[];
  readonly k: number;
  readonly n: number;
  /** Other users, verified through the ring (both sides of a call). */
  readonly verified: VerifiedUsers;
  /** What the SIP half places calls with (caller.ts). */
  readonly caller: CallerContext;
  /** What answers the SECP2PSIP INVITEs of other adapters (callee.ts). */
  readonly callee: CalleeContext;
  /** What sends and answers instant messages (messaging.ts). */
  readonly messaging: MessagingContext;
  /** Offline messages: deposits into other users' mailboxes, collection of this adapter's users' (mailbox.ts). */
  readonly mailbox: Mailbox;
  /** Presence: watching other users for this adapter's phones, and publishing its users' state (presence.ts). */
  readonly presence: PresenceService;
  readonly stats = { registrations: 0, invitesAnswered: 0, messagesAnswered: 0, malformed: 0 };
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  /** Registration of this adapter's users with the bootstrap set (user-registration.ts). */
  private readonly registration: UserRegistration;
  /** New names on their way to the bootstrap right now. */
  get pendingRegistrations(): number {
    return this.registration.pendingRegistrations;
  }
  /**
   * False while a restarting adapter registers its users again: SECP2PSIP
   * INVITEs are then answered NOT_READY (the caller's phone gets 503 and
   * Retry-After) rather than "unknown user".
   */
  ready = true;
  /** Users with phone bindings whose registration with the bootstrap after a restart is being retried. */
  readonly restoring = new Set<string>();

  constructor(c: AdapterNodeComponents<P>, init: AdapterNodeInit) {
    this.endpoint = c.endpoint;
    this.ring = c.ring;
    this.trust = c.trust;
    this.phones = c.phones;
    this.clock = c.clock;
    this.random = c.random;
    this.log = (c.logger ?? silentLogger).child({ component: 'adapter', node: c.endpoint.self.id.slice(0, 8) });
    this.bootstraps = init.admitted.bootstraps;
    this.bootstrapKeys = this.bootstraps.map((b) => b.key);
    this.k = init.admitted.k;
    this.n = init.admitted.n;
    this.verified = new VerifiedUsers(
      {
        lookup: {
          ring: this.ring,
          k: this.k,
          n: this.n,
          rebuild: init.rebuild ?? 'robust',
          random: this.random,
          bootstrapKeys: this.bootstrapKeys,
          wallNow: () => this.clock.wallNow(),
          log: this.log,
        },
        trust: this.trust,
        whois: (name) => this.whois(name),
        now: () => this.clock.now(),
        wallNow: () => this.clock.wallNow(),
        log: this.log,
      },
      init.cacheMs ?? 0,
    );
    this.registration = new UserRegistration({
      endpoint: this.endpoint,
      users: this.users,
      bootstraps: this.bootstraps,
      verified: this.verified,
      trust: this.trust,
      keys: c.keys ?? new MemoryUserKeys(),
      clock: this.clock,
      random: this.random,
      log: this.log,
      init,
      stats: this.stats,
    });
    const replay = new ReplayCache({ clock: this.clock, windowMs: init.windowMs ?? 30_000 });
    const mode = init.mode ?? 'signed';
    this.caller = {
      endpoint: this.endpoint,
      verified: this.verified,
      replay,
      clock: this.clock,
      random: this.random,
      log: this.log,
      mode,
      timeoutMs: init.timeoutMs ?? 5000,
      onEvent: init.onEvent,
    };
    this.callee = {
      users: this.users,
      phones: this.phones,
      verified: this.verified,
      replay,
      clock: this.clock,
      log: this.log,
      mode,
      onEvent: init.onEvent,
      onMalformed: () => this.stats.malformed++,
    };
    const delivered = c.delivered ?? new MemoryDeliveredLog();
    this.mailbox = new Mailbox({
      ring: this.ring,
      users: this.users,
      verified: this.verified,
      clock: this.clock,
      log: this.log,
      inbox: c.inbox,
      delivered,
      ttlMs: init.mailboxTtlMs ?? MAILBOX_TTL_MS,
    });
    this.messaging = {
      endpoint: this.endpoint,
      users: this.users,
      verified: this.verified,
      replay,
      clock: this.clock,
      random: this.random,
      log: this.log,
      mode: () => this.caller.mode,
      timeoutMs: init.timeoutMs ?? 5000,
      inbox: c.inbox,
      mailbox: this.mailbox,
      delivered,
    };
    this.presence = new PresenceService({ ...this.messaging, phones: c.presencePhones, ring: this.ring });
    this.setNewNamesPerMinute(init.newNamesPerMinute ?? 0);
    c.endpoint.onRequest((method, payload, caller) => this.onRequest(method, payload, caller));
  }

  /** The cap on new names sent to the bootstrap (0: none), also while running (a configuration reload). */
  setNewNamesPerMinute(perMinute: number): void {
    this.registration.setNewNamesPerMinute(perMinute);
  }

  get mode(): SecurityMode {
    return this.caller.mode;
  }

  /** Both sides follow the adapter's mode. */
  set mode(m: SecurityMode) {
    this.caller.mode = m;
    this.callee.mode = m;
  }

  /** Other RPC methods served on the adapter's endpoint (SIP carried between adapters, overlay/sip-over-ring.ts). */
  readonly methods = new Map<string, RequestHandler>();

  /** The callee side for a caller whose adapter is behind a NAT: every 302 names this adapter. */
  private get calleeInPath(): CalleeContext {
    const phones = this.phones;
    return {
      ...this.callee,
      phones: { contactsOf: (n, t, c) => phones.contactsOf(n, t, c, true) },
    };
  }

  private onRequest(method: string, payload: Payload, caller: Caller): Payload | Promise<Payload> {
    if (method === SECP2PSIP_METHOD) {
      if (!this.ready) return encodeMessage({ t: 'ERROR', code: 'NOT_READY', reason: 'adapter starting' });
      const opened = openRequest(this.users, payload);
      const m = opened.d.ok ? opened.d.value : undefined;
      if (this.restoring.size > 0 && (m?.t === 'INVITE' || m?.t === 'MESSAGE')) {
        if (this.restoring.has(m.to) && !this.users.has(m.to))
          return encodeMessage({ t: 'ERROR', code: 'NOT_READY', reason: `${m.to} is being registered again` });
      }
      if (m?.t === 'WATCH' || m?.t === 'PRESENCE') return this.presence.answer(opened, caller);
      if (m?.t === 'MESSAGE') {
        this.stats.messagesAnswered++;
        return answerIm(this.messaging, opened, caller);
      }
      this.stats.invitesAnswered++;
      // A caller's adapter behind a NAT (a relayed ring address) carries the call's SIP over the ring: ours must
      // be in the path too, so the 302 names us whatever our phone's Contact (docs/design.md "Adapters behind NAT").
      return answerOpenedInvite(isRelayAddr(caller.ref?.addr ?? '') ? this.calleeInPath : this.callee, opened, caller);
    }
    const extra = this.methods.get(method);
    if (extra) return extra(method, payload, caller);
    return this.ring.handleRequest(method, payload, caller);
  }

  /**
   * Register `name` with the bootstrap (once; concurrent callers share the attempt), within the adapter's
   * back-pressure on new names: see UserRegistration.ensureUser.
   */
  ensureUser(name: string, invite?: string): Promise<LocalUser> {
    return this.registration.ensureUser(name, invite);
  }

  /** The registration of `name` with the bootstrap under way, if one is (a phone's REGISTER started it). */
  registering(name: string): Promise<LocalUser> | undefined {
    return this.registration.registering(name);
  }

  /** REGISTER a user of ours again with the keys it has (its location record then names our ring address now). */
  registerAgain(name: string): Promise<void> {
    return this.registration.registerAgain(name);
  }

  /** SECP2PSIP REGISTER (Table 1) with proof of possession and the signed location record. */
  registerUser(name: string, invite?: string): Promise<LocalUser> {
    return this.registration.registerUser(name, invite);
  }

  /** WHOIS at the name's authoritative bootstrap, then at the others while it does not answer. */
  whois(name: string): Promise<UserKeyBundle | undefined> {
    return this.registration.whois(name);
  }
}
