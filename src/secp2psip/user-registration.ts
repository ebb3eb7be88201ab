/**
 * Registration of an adapter's users with the bootstrap set (seed 000 IV.2 "Key-Pair Generation",
 * "SecP2PSIP Registration Request"): the signed REGISTER with proof of possession and the user's location
 * record, its back-pressure (new names in flight, new names per minute), fail-over to another bootstrap of
 * the set when one does not answer, and WHOIS at a name's authority. The adapter's overlay half
 * (adapter-node.ts) owns one and serves these through its own methods; it holds the state that is only
 * registration's: the registrations in flight, the new-name rate, the location sequence number and the
 * bootstrap REGISTERs currently go to.
 */
import type { Identity } from '../identity/identity.ts';
import { UserSigner } from '../identity/user-key.ts';
import type { RpcEndpoint } from '../rpc/types.ts';
import { bytesEqual } from '../util/bytes.ts';
import type { Clock } from '../util/clock.ts';
import { type ErrorCode, isOverlayError, OverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { Random } from '../util/random.ts';
import { TokenBuckets } from '../util/token-bucket.ts';
import { bootstrapRef, exchange } from './bootstrap-exchange.ts';
import type { LocalUser } from './call-common.ts';
import {
  type AdmittedMsg,
  type BootstrapInfo,
  DOMAIN,
  encodeMessage,
  INVITE_RE,
  type LocationRecord,
  locationTbs,
  NAME_RE,
  type RegisteredMsg,
  type RegisterMsg,
  registerTbs,
  type UserKeyBundle,
} from './messages.ts';
import { authorityFor } from './name-authority.ts';
import type { TrustStore } from './trust-store.ts';
import type { UserKeyStore } from './user-keys.ts';
import type { VerifiedUsers } from './verified-users.ts';

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

/** New names on their way to the bootstrap at once, per adapter (see ensureUser). */
export const MAX_PENDING_REGISTRATIONS = 32;

/** What registration uses of the adapter's overlay half (adapter-node.ts), shared with it. */
export interface RegistrationContext {
  endpoint: RpcEndpoint;
  users: Map<string, LocalUser>;
  bootstraps: BootstrapInfo[];
  verified: VerifiedUsers;
  trust: TrustStore;
  keys: UserKeyStore;
  clock: Clock;
  random: Random;
  log: Logger;
  init: { admitted: AdmittedMsg; bootstrap: BootstrapInfo; sipAddr: string };
  /** The adapter's counters: `registrations` counts here. */
  stats: { registrations: number };
}

export class UserRegistration {
  private readonly endpoint: RpcEndpoint;
  private readonly users: Map<string, LocalUser>;
  private readonly bootstraps: BootstrapInfo[];
  private readonly verified: VerifiedUsers;
  private readonly trust: TrustStore;
  private readonly keys: UserKeyStore;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly init: RegistrationContext['init'];
  private readonly stats: RegistrationContext['stats'];
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

  constructor(c: RegistrationContext) {
    this.endpoint = c.endpoint;
    this.users = c.users;
    this.bootstraps = c.bootstraps;
    this.verified = c.verified;
    this.trust = c.trust;
    this.keys = c.keys;
    this.clock = c.clock;
    this.random = c.random;
    this.log = c.log;
    this.init = c.init;
    this.stats = c.stats;
    this.registrar = c.init.bootstrap;
  }

  /** The cap on new names sent to the bootstrap (0: none), also while running (a configuration reload). */
  setNewNamesPerMinute(perMinute: number): void {
    this.newNameRate =
      perMinute > 0 ? new TokenBuckets(this.clock, { burst: perMinute, perSecond: perMinute / 60 }) : undefined;
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
    let body: ReturnType<UserRegistration['registerMessage']>['body'];
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
