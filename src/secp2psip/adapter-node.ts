/**
 * The overlay half of a SecP2PSIP adapter: its ring membership, its users'
 * keys, registration with the bootstrap (seed 000 IV.2 "Key-Pair Generation",
 * "SecP2PSIP Registration Request") and the callee side of session
 * establishment over RPC (callee.ts). The SIP half (adapter.ts) sits on top
 * and places calls through `caller` (caller.ts); what this half needs of the
 * other comes in through its constructor: the phones registered here
 * (`LocalPhones`) and where users' keys live (`UserKeyStore`).
 */
import type { ChordNode } from '../dht/chord/chord-node.ts';
import { nodeIdFromKey } from '../identity/fingerprint.ts';
import type { Identity } from '../identity/identity.ts';
import { ReplayCache } from '../identity/replay-cache.ts';
import { UserSigner } from '../identity/user-key.ts';
import { isRelayAddr } from '../rpc/relay.ts';
import type { Caller, NodeRef, Payload, RequestHandler, RpcEndpoint } from '../rpc/types.ts';
import { bytesEqual } from '../util/bytes.ts';
import type { Clock } from '../util/clock.ts';
import { type ErrorCode, isOverlayError, OverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import type { Random } from '../util/random.ts';
import { TokenBuckets } from '../util/token-bucket.ts';
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
import {
  type AdmittedMsg,
  type BootstrapInfo,
  DOMAIN,
  decodeMessage,
  encodeMessage,
  type LocationRecord,
  locationTbs,
  NAME_RE,
  type RegisteredMsg,
  type RegisterMsg,
  registerTbs,
  type UserKeyBundle,
  INVITE_RE,
} from './messages.ts';
import type { LocalPhones } from './local-phones.ts';
import { authorityFor } from './name-authority.ts';
import type { TrustStore } from './trust-store.ts';
import { MemoryUserKeys, type UserKeyStore } from './user-keys.ts';
import { VerifiedUsers } from './verified-users.ts';

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

/**
 * Refusals after which the bootstrap has certainly not bound the name: the
 * key made for it is discarded. (A timeout, an unreachable authority or a
 * failure while storing may follow a binding: the key is kept.)
 */
const NAME_NOT_BOUND = new Set<ErrorCode>([
  'USER_NAME_TAKEN',
  'USER_NAME_RATE',
  'USER_NAME_QUOTA',
  'USER_INVITE_INVALID',
  'RPC_TOO_MANY_IN_FLIGHT',
  'RPC_REFUSED',
  'RPC_MALFORMED',
  'IDENTITY_BAD_KEY',
  'IDENTITY_BAD_SIGNATURE',
  'IDENTITY_BAD_CERTIFICATE',
  'IDENTITY_STALE',
  'IDENTITY_REPLAY',
]);

/** Transport failures of a request that no bootstrap answered: another bootstrap of the set may. */
const UNANSWERED = new Set<ErrorCode>(['RPC_UNREACHABLE', 'RPC_TIMEOUT']);

/** The Retry-After (s) a new-name rate refusal asks for (`retry after N s` in its reason), if it is one. */
export function retryAfterOf(e: unknown): number | undefined {
  if (!isOverlayError(e, 'USER_NAME_RATE')) return undefined;
  const m = /retry after (\d+) s/.exec(e.message);
  return m ? Math.max(1, Number(m[1])) : 60;
}

/** Send one SECP2PSIP message and decode the answer; ERROR answers become OverlayErrors. */
export async function exchange(endpoint: RpcEndpoint, to: NodeRef, payload: Uint8Array, timeoutMs?: number) {
  const raw = await endpoint.request(to, SECP2PSIP_METHOD, payload, { timeoutMs });
  const d = decodeMessage(raw);
  if (!d.ok) throw new OverlayError('RPC_MALFORMED', d.error);
  // `answered`: the peer itself refused (not a transport failure on the way).
  if (d.value.t === 'ERROR') throw new OverlayError(d.value.code, d.value.reason, { answered: true });
  return d.value;
}

/** ADMIT: ask a bootstrap for this node key's ring id (the TLS handshake proves the key). */
export async function requestAdmission(endpoint: RpcEndpoint, bootstrap: BootstrapInfo): Promise<AdmittedMsg> {
  const m = await exchange(endpoint, bootstrapRef(bootstrap), encodeMessage({ t: 'ADMIT' }));
  if (m.t !== 'ADMITTED') throw new OverlayError('RPC_MALFORMED', `expected ADMITTED, got ${m.t}`);
  return m;
}

export function bootstrapRef(b: BootstrapInfo): NodeRef {
  return { id: nodeIdFromKey(b.key), addr: b.addr, key: b.key };
}

/** New names on their way to the bootstrap at once, per adapter (see ensureUser). */
export const MAX_PENDING_REGISTRATIONS = 32;

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
  private readonly keys: UserKeyStore;
  private readonly init: AdapterNodeInit;
  private readonly pending = new Map<string, Promise<LocalUser>>();
  /** This adapter's own cap on new names sent to the bootstrap (see ensureUser). */
  private newNameRate?: TokenBuckets;
  /** New names on their way to the bootstrap right now. */
  get pendingRegistrations(): number {
    return this.pending.size;
  }
  private seq = 0;
  /** The bootstrap REGISTERs go to: the one that admitted this adapter, until it stops answering. */
  private registrar: BootstrapInfo;
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
    this.keys = c.keys ?? new MemoryUserKeys();
    this.clock = c.clock;
    this.random = c.random;
    this.init = init;
    this.log = (c.logger ?? silentLogger).child({ component: 'adapter', node: c.endpoint.self.id.slice(0, 8) });
    this.bootstraps = init.admitted.bootstraps;
    this.registrar = init.bootstrap;
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
    this.newNameRate =
      perMinute > 0 ? new TokenBuckets(this.clock, { burst: perMinute, perSecond: perMinute / 60 }) : undefined;
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
   * Register `name` with the bootstrap (once; concurrent callers share the
   * attempt). Back-pressure: at most MAX_PENDING_REGISTRATIONS new names are
   * on their way to the bootstrap at once; past that the caller is refused
   * at once (RPC_TOO_MANY_IN_FLIGHT: the phone gets 503 with Retry-After)
   * instead of queueing an unbounded backlog of key generations and stores.
   * A name with no key kept yet is new: at most `newNamesPerMinute` of those
   * go to the bootstrap (USER_NAME_RATE past that: 503 with Retry-After).
   * `invite` is the enrolment token the phone gave, if any.
   */
  ensureUser(name: string, invite?: string): Promise<LocalUser> {
    const have = this.users.get(name);
    if (have) return Promise.resolve(have);
    let p = this.pending.get(name);
    if (!p && this.pending.size >= MAX_PENDING_REGISTRATIONS)
      return Promise.reject(new OverlayError('RPC_TOO_MANY_IN_FLIGHT', 'too many new registrations at once'));
    if (!p && this.newNameRate && NAME_RE.test(name) && !this.keys.has(name) && !this.newNameRate.take('new')) {
      const retryAfterS = Math.max(1, Math.ceil(this.newNameRate.waitMs('new') / 1000));
      return Promise.reject(
        new OverlayError('USER_NAME_RATE', `too many new names at this adapter; retry after ${retryAfterS} s`),
      );
    }
    if (!p) {
      p = this.registerUser(name, invite).finally(() => this.pending.delete(name));
      this.pending.set(name, p);
    }
    return p;
  }

  /** The registration of `name` with the bootstrap under way, if one is (a phone's REGISTER started it). */
  registering(name: string): Promise<LocalUser> | undefined {
    return this.pending.get(name);
  }

  /**
   * REGISTER a user of ours again with the keys it has, so that its location record names our ring address as it
   * is now (a client behind a NAT whose relays changed, roles.ts).
   */
  async registerAgain(name: string): Promise<void> {
    const user = this.users.get(name);
    if (!user) return;
    const { answer } = await this.registerAnyBootstrap(() =>
      this.registerMessage(name, user.signer, user.kem, undefined),
    );
    if (answer.t !== 'REGISTERED' || answer.name !== name)
      throw new OverlayError('RPC_MALFORMED', 'bootstrap did not answer REGISTERED');
    this.stats.registrations++;
  }

  /** SECP2PSIP REGISTER (Table 1) with proof of possession and the signed location record. */
  async registerUser(name: string, invite?: string): Promise<LocalUser> {
    if (!NAME_RE.test(name)) throw new OverlayError('USER_UNKNOWN', `'${name}' is not a usable user name`);
    const known = this.keys.has(name);
    const token = invite ?? this.keys.invite(name);
    const kem = this.keys.identity(name);
    const signer = UserSigner.fromIdentity(kem);
    let answer: Awaited<ReturnType<typeof exchange>>;
    let body: ReturnType<AdapterNode['registerMessage']>['body'];
    try {
      ({ answer, body } = await this.registerAnyBootstrap(() => this.registerMessage(name, signer, kem, token)));
    } catch (e) {
      // The bootstrap refused a name this adapter had no key for: no key file stays behind for it.
      if (!known && isOverlayError(e) && e.detail?.answered === true && NAME_NOT_BOUND.has(e.code))
        this.keys.discard(name);
      throw e;
    }
    if (answer.t !== 'REGISTERED' || answer.name !== name)
      throw new OverlayError('RPC_MALFORMED', 'bootstrap did not answer REGISTERED');
    const reg = answer as RegisteredMsg;
    const user: LocalUser = {
      name,
      signer,
      kem,
      bundle: {
        name,
        signKey: body.publicKey.signKey,
        sealKey: body.publicKey.sealKey,
        registeredAt: reg.registeredAt,
      },
      ...(reg.userCert ? { cert: reg.userCert } : {}),
    };
    this.users.set(name, user);
    void this.verified.prewarm();
    if (token !== undefined) this.keys.inviteSpent(name);
    // Our own key is trusted from the start: a different one coming back from the ring would be an attack.
    this.trust.accept(user.bundle, this.clock.wallNow());
    this.stats.registrations++;
    this.log.info({ user: name }, `registered ${name} with the bootstrap`);
    return user;
  }

  /**
   * Send a REGISTER to the bootstrap that took the last one (at first the one that admitted this adapter);
   * when it does not answer at all (down, unreachable), to the others of the set in turn, each with a
   * message signed afresh: the first may have reached the name's authority through forwarding, which
   * would refuse the same nonce as a replay. A bootstrap that answered, even with a refusal, is not
   * bypassed.
   */
  private async registerAnyBootstrap<B>(make: () => { msg: RegisterMsg; body: B }) {
    const order = [this.registrar, ...this.bootstraps.filter((b) => !bytesEqual(b.key, this.registrar.key))];
    let last: unknown;
    for (const b of order) {
      const { msg, body } = make();
      try {
        const answer = await exchange(this.endpoint, bootstrapRef(b), encodeMessage(msg));
        if (b !== this.registrar) {
          this.log.info({ bootstrap: b.addr, was: this.registrar.addr }, 'registering through another bootstrap');
          this.registrar = b;
        }
        return { answer, body };
      } catch (e) {
        if (!isOverlayError(e) || e.detail?.answered === true || !UNANSWERED.has(e.code)) throw e;
        this.log.warn({ bootstrap: b.addr, err: e.message }, 'bootstrap did not answer a REGISTER; trying another');
        last = e;
      }
    }
    throw last;
  }

  /** A signed SECP2PSIP REGISTER for `name`, with a fresh nonce and timestamp. */
  private registerMessage(name: string, signer: UserSigner, kem: Identity, token: string | undefined) {
    const self = this.endpoint.self;
    const now = this.clock.wallNow();
    const locBody: Omit<LocationRecord, 'sig' | 'admission'> = {
      name,
      nodeKey: self.key,
      nodeAddr: self.addr,
      sipAddr: this.init.sipAddr,
      time: now,
      seq: this.seq++,
    };
    const location: LocationRecord = {
      ...locBody,
      sig: signer.sign(DOMAIN.location, locationTbs(locBody)),
      admission: this.init.admitted.admission,
    };
    const body: Omit<RegisterMsg, 'sig' | 'location' | 't'> = {
      name,
      ip: this.init.sipAddr,
      publicKey: { signKey: signer.key.encode(), sealKey: kem.bundle.kem },
      node: { addr: self.addr, key: self.key },
      ts: now,
      nonce: this.random.bytes(16),
      ...(token !== undefined && INVITE_RE.test(token) ? { invite: token } : {}),
    };
    const certChain = this.keys.certChain(name);
    const msg: RegisterMsg = {
      t: 'REGISTER',
      ...body,
      ...(certChain ? { certChain } : {}),
      location,
      sig: signer.sign(DOMAIN.register, registerTbs(body)),
    };
    return { msg, body };
  }

  /**
   * WHOIS at the name's authoritative bootstrap; while it does not answer, at the others (with a shared
   * registry any of them knows every name; with registries of their own they answer unknown).
   */
  async whois(name: string): Promise<UserKeyBundle | undefined> {
    const a = authorityFor(name, this.bootstraps);
    for (const b of [a, ...this.bootstraps.filter((x) => x !== a)]) {
      try {
        const m = await exchange(this.endpoint, bootstrapRef(b), encodeMessage({ t: 'WHOIS', name }));
        return m.t === 'WHOIS_OK' && m.bundle.name === name ? m.bundle : undefined;
      } catch (e) {
        if (!isOverlayError(e)) throw e;
        if (e.detail?.answered === true || !UNANSWERED.has(e.code)) return undefined;
      }
    }
    return undefined;
  }
}
