/**
 * The SecP2PSIP bootstrap server, seed 000 IV.2 (Figure 2): admits adapters
 * to the ring (ADMIT: the bootstrap picks each node's ring id), registers users
 * (REGISTER, Table 1): name uniqueness, proof of possession of the key (or a
 * certificate chaining to the CA in strict mode), Shamir split into n pieces
 * stored at `Username.i`, the user-signed location record at `Username`, and
 * answers REGISTERED with the ring's contact info.
 *
 * It is also a ring member: with no adapters yet the pieces must live
 * somewhere. With several bootstraps on registries of their own, each name
 * has one authority (name-authority.ts) and a REGISTER for a name owned by
 * another bootstrap is forwarded there; with a registry they share
 * (registry-pg.ts), any bootstrap binds any name and none forwards.
 */
import { isRelayAddr } from '../rpc/relay.ts';
import { DIALBACK_METHOD, DialBackService } from '../rpc/relay-dialback.ts';
import { createHash, createHmac, sign as cryptoSign } from 'node:crypto';
import { issueAdmission } from '../identity/admission.ts';
import type { Identity } from '../identity/identity.ts';
import { nodeIdFromKey } from '../identity/fingerprint.ts';
import { rawPublicToKeyObject } from '../identity/keys.ts';
import { ReplayCache } from '../identity/replay-cache.ts';
import { UserKey } from '../identity/user-key.ts';
import type { ChordNode } from '../dht/chord/chord-node.ts';
import type { Caller, NodeRef, Payload, RpcEndpoint } from '../rpc/types.ts';
import { encodePiece, splitKey } from '../sharing/index.ts';
import { type Clock, SystemClock } from '../util/clock.ts';
import { type ErrorCode, isOverlayError, OverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import type { Random } from '../util/random.ts';
import { type TokenBucketLimit, TokenBuckets } from '../util/token-bucket.ts';
import {
  type AdmitMsg,
  type AdmittedMsg,
  type BootstrapInfo,
  DOMAIN,
  decodeLocation,
  decodeMessage,
  encodeBundle,
  encodeLocation,
  encodeMessage,
  locationTbs,
  type RegisteredMsg,
  type RegisterMsg,
  type RingContact,
  registerTbs,
} from './messages.ts';
import { issueUserCert } from './user-cert.ts';
import { authorityFor } from './name-authority.ts';
import { NamePublisher } from './name-publisher.ts';
import { PublishedMarks } from './published-marks.ts';
import type { NameRegistry } from './name-registry.ts';
import type { ClaimOutcome, NewNamePolicy, Registry, RegistryEntry } from './registry.ts';
import { admittedNode, admittedRef } from './ring-records.ts';
import { bytesEqual } from '../util/bytes.ts';
import { logRefusal, refusalReasonOf } from '../util/refusal.ts';

/** The one RPC method carrying SECP2PSIP messages (Chord uses `chord.*`). */
export const SECP2PSIP_METHOD = 'secp2psip';
/** Error answers that are no fault of the peer: not logged as refusals. */
const NOT_A_REFUSAL = new Set<ErrorCode>(['USER_UNKNOWN', 'NOT_READY', 'BAD_CONFIG', 'TIMEOUT', 'DHT_LOOKUP_FAILED']);

/** Registrations a bootstrap works on at once; more are refused as busy. */
export const MAX_REGISTERING = 64;

export interface BootstrapComponents {
  identity: Identity;
  endpoint: RpcEndpoint;
  ring: ChordNode;
  /** This bootstrap's own file: the ring ids it assigned, and the names when `names` is not given. */
  registry: Registry;
  /** Where names are bound (default: `registry`); a shared one (registry-pg.ts) serves the whole set. */
  names?: NameRegistry;
  clock: Clock;
  random: Random;
  logger?: Logger;
}

/** The steps of a registration after its checks (name-registry.ts), for tests that crash between them. */
export type RegistrationStep = 'claimed' | 'published' | 'marked';

export interface BootstrapInit {
  k: number;
  n: number;
  /** Every bootstrap of the overlay, this one included (default: only this one). */
  bootstraps?: BootstrapInfo[];
  /** Strict mode: PEM or DER trust anchors; users must present a certificate chaining to one of them. */
  caBundle?: (string | Uint8Array)[];
  /** Accepted clock difference for REGISTER timestamps (default 30 s). */
  windowMs?: number;
  /** Lifetime of admission certificates (default 30 days). */
  admissionTtlMs?: number;
  /**
   * Key of the ring-id derivation (see ringIdFor). Give every bootstrap of a
   * set the same secret and a node key gets the same ring id from each; by
   * default each bootstrap derives its own from its identity key.
   */
  ringIdSecret?: Uint8Array;
  /** ADMIT rate limits per node key and per source address (token buckets on the injected clock). */
  admitLimits?: { perKey?: TokenBucketLimit; perAddress?: TokenBucketLimit };
  /** Limits on new names (default: none; the `bootstrap` command sets DEFAULT_NEW_NAME_LIMITS). */
  newNames?: NewNameLimits;
  /** Bind a new name only with an unused enrolment token (`secp2psip bootstrap --invite`). */
  requireInvite?: boolean;
  /**
   * Awaited after each step of a registration (tests: a hook that never returns is a crash between
   * two steps).
   */
  onStep?: (step: RegistrationStep, name: string) => void | Promise<void>;
}

/**
 * How many new names this bootstrap binds, when it is the names' authority
 * (a REGISTER for an existing name with its key is never limited). 0 or
 * absent: no limit.
 */
export interface NewNameLimits {
  /** Per adapter (node key), per minute (a burst of this many, then evenly spread). */
  perMinute?: number;
  /** Per source address, per minute: one host holding many node keys. */
  perAddressPerMinute?: number;
  /** Per adapter in total, kept in the registry across restarts. */
  perAdapter?: number;
}

/** What the `bootstrap` command applies unless told otherwise. */
export const DEFAULT_NEW_NAME_LIMITS = Object.freeze({ perMinute: 10, perAddressPerMinute: 60, perAdapter: 1000 });

/** Defaults: a node key is admitted a few times in a row, then once a minute; one address 64 at once, then 1/s. */
export const DEFAULT_ADMIT_LIMITS = Object.freeze({
  perKey: Object.freeze({ burst: 3, perSecond: 1 / 60 }),
  perAddress: Object.freeze({ burst: 64, perSecond: 1 }),
});

const RING_ID_DOMAIN = 'secp2psip/ring-id/v1\0';

/** How long a forwarded ADMIT waits for the ring-id authority (well inside an adapter's own RPC timeout). */
const ADMIT_FORWARD_TIMEOUT_MS = 1000;
/** How long a ring-id authority that did not answer is not asked again. */
const AUTHORITY_DOWN_MS = 30_000;

/** The string whose rendezvous authority (name-authority.ts) mints a node key's ring id. */
function ringIdAuthorityName(nodeKey: Uint8Array): string {
  return `ring-id:${Buffer.from(nodeKey).toString('hex')}`;
}

/** The host part of a transport address (`host:port`, `[v6]:port`, or an in-memory name). */
function sourceHost(addr: string): string {
  const m = /^\[([^\]]+)\]:\d+$/.exec(addr) ?? /^([^:]+):\d+$/.exec(addr);
  return m ? m[1] : addr;
}

export class BootstrapServer {
  readonly identity: Identity;
  readonly endpoint: RpcEndpoint;
  readonly ring: ChordNode;
  readonly registry: Registry;
  /** Where names are bound: `registry`, or a registry shared by the set. */
  readonly names: NameRegistry;
  readonly publisher: NamePublisher;
  readonly k: number;
  readonly n: number;
  readonly bootstraps: BootstrapInfo[];
  readonly stats = {
    admitted: 0,
    /** ADMITs refused by the per-key or per-address rate limit. */
    admitLimited: 0,
    /** ADMITs forwarded to the node key's ring-id authority. */
    admitForwarded: 0,
    registered: 0,
    /** New names refused by a rate limit, the per-adapter total or a missing/bad enrolment token. */
    namesRefused: 0,
    refused: 0,
    forwarded: 0,
    malformed: 0,
    busy: 0,
  };
  /** Registrations at work right now (see register). */
  private registering = 0;
  /** Ring-id authorities (hex key) found silent, and until when they are not asked. */
  private readonly authorityDownUntil = new Map<string, number>();
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly replay: ReplayCache;
  private readonly caBundle?: (string | Uint8Array)[];
  private readonly admissionTtlMs: number;
  private readonly admittedRefs = new WeakSet<NodeRef>();
  private readonly ringIdSecret: Uint8Array;
  private readonly admitPerKey: TokenBuckets;
  private readonly admitPerAddress: TokenBuckets;
  private newNames: NewNameLimits;
  private requireInvite: boolean;
  private namesPerKey?: TokenBuckets;
  private namesPerAddress?: TokenBuckets;
  private readonly onStep?: BootstrapInit['onStep'];
  /** Registrations answered and not yet marked published. */
  private readonly marks: PublishedMarks;
  /** Answers an admitted adapter whether its ring address can be dialled (rpc/relay-dialback.ts). */
  private readonly dialBack: DialBackService;

  constructor(c: BootstrapComponents, init: BootstrapInit) {
    this.identity = c.identity;
    this.endpoint = c.endpoint;
    this.ring = c.ring;
    this.registry = c.registry;
    this.names = c.names ?? c.registry;
    this.clock = c.clock;
    this.random = c.random;
    this.log = (c.logger ?? silentLogger).child({ component: 'bootstrap', node: c.endpoint.self.id.slice(0, 8) });
    this.dialBack = new DialBackService(c.endpoint, () => c.clock.now(), this.log);
    this.k = init.k;
    this.n = init.n;
    if (!(Number.isInteger(this.k) && Number.isInteger(this.n) && this.k >= 1 && this.n >= this.k && this.n <= 255))
      throw new OverlayError('BAD_CONFIG', 'need 1 <= k <= n <= 255');
    this.bootstraps = init.bootstraps ?? [{ addr: c.endpoint.self.addr, key: c.identity.bundle.sig }];
    if (!this.bootstraps.some((b) => bytesEqual(b.key, c.identity.bundle.sig)))
      throw new OverlayError('BAD_CONFIG', 'the bootstrap set must include this bootstrap');
    this.caBundle = init.caBundle;
    this.replay = new ReplayCache({ clock: this.clock, windowMs: init.windowMs ?? 30_000 });
    this.admissionTtlMs = init.admissionTtlMs ?? 30 * 24 * 3600_000;
    // Ed25519 signatures are deterministic: a secret only this bootstrap can compute, the same after a restart.
    this.ringIdSecret =
      init.ringIdSecret ??
      createHash('sha256')
        .update(cryptoSign(null, Buffer.from(`${RING_ID_DOMAIN}secret`), c.identity.signingKey))
        .digest();
    this.admitPerKey = new TokenBuckets(this.clock, init.admitLimits?.perKey ?? DEFAULT_ADMIT_LIMITS.perKey);
    this.admitPerAddress = new TokenBuckets(
      this.clock,
      init.admitLimits?.perAddress ?? DEFAULT_ADMIT_LIMITS.perAddress,
    );
    this.newNames = { ...init.newNames };
    this.requireInvite = init.requireInvite === true;
    this.setNewNameLimits(this.newNames);
    this.onStep = init.onStep;
    this.marks = new PublishedMarks(this.names, this.clock, this.log, (name) => this.onStep?.('marked', name));
    this.publisher = new NamePublisher(
      { identity: this.identity, ring: this.ring, names: this.names, clock: this.clock, logger: this.log },
      {
        k: this.k,
        n: this.n,
        // With a shared registry too, each bootstrap republishes at start only the names rendezvous gives it.
        owns: (name) => bytesEqual(authorityFor(name, this.bootstraps).key, this.identity.bundle.sig),
      },
    );
    c.endpoint.onRequest((method, payload, caller) => this.onRequest(method, payload, caller));
    this.publisher.start();
  }

  /**
   * New limits on new names, and whether they need an enrolment token, while
   * running (a configuration reload). The per-minute buckets start full again:
   * a reload may let one more burst through, never fewer names than the new limit.
   */
  setNewNameLimits(limits: NewNameLimits, requireInvite = this.requireInvite): void {
    this.newNames = { ...limits };
    this.requireInvite = requireInvite;
    const perMinute = (n: number | undefined) =>
      n ? new TokenBuckets(this.clock, { burst: n, perSecond: n / 60 }) : undefined;
    this.namesPerKey = perMinute(limits.perMinute);
    this.namesPerAddress = perMinute(limits.perAddressPerMinute);
  }

  /** Ring id and admission certificate of a bootstrap's own node, before its endpoint exists. */
  static selfAdmission(
    identity: Identity,
    registry: Registry,
    random: Random,
    wallNow: number,
    ttlMs = 30 * 24 * 3600_000,
  ): { id: string; admission: Uint8Array } {
    const id = registry.nodeId(identity.bundle.sig, wallNow, () => Buffer.from(random.bytes(20)).toString('hex'));
    return { id, admission: issueAdmission(identity, identity.bundle.sig, id, ttlMs, wallNow) };
  }

  /** Ref policy for this overlay: ids must come with an admission from one of its bootstraps. */
  get verifyRef(): (ref: NodeRef) => boolean {
    return admittedRef(
      this.bootstraps.map((b) => b.key),
      () => this.clock.wallNow(),
    );
  }

  /**
   * Admission-free methods: the bootstrap's endpoint accepts a HELLO with a
   * self-certified id (SHA-1 of the key) so that a node not admitted yet can
   * ask for ADMIT; such a caller gets ADMIT and nothing else (no ring RPC, no
   * REGISTER, no WHOIS). A caller on a link we dialed (no HELLO: its key was
   * pinned by us) counts as admitted.
   */
  private isAdmitted(caller: Caller): boolean {
    const ref = caller.ref;
    if (ref === undefined || this.admittedRefs.has(ref)) return true;
    // One signature check per link: the transport hands the same frozen ref for every request on it.
    if (!this.verifyRef(ref)) return false;
    this.admittedRefs.add(ref);
    return true;
  }

  private onRequest(method: string, payload: Payload, caller: Caller): Payload | Promise<Payload> {
    if (method === SECP2PSIP_METHOD) return this.handle(payload, caller);
    if (!this.isAdmitted(caller)) {
      this.stats.refused++;
      logRefusal(this.log, 'not_admitted', caller.addr, { method }, 'ring request from a node not admitted; refused');
      throw new OverlayError('RPC_REFUSED', 'not admitted: only ADMIT is served before admission');
    }
    if (method === DIALBACK_METHOD) return this.dialBack.answer(payload, caller);
    return this.ring.handleRequest(method, payload, caller);
  }

  /** Answer one SECP2PSIP message. Never throws: refusals travel back as ERROR messages. */
  async handle(payload: Payload, caller: Caller): Promise<Uint8Array> {
    const d = decodeMessage(payload);
    if (!d.ok) {
      this.stats.malformed++;
      return this.refuse('RPC_MALFORMED', d.error, caller);
    }
    const m = d.value;
    if (m.t !== 'ADMIT' && !this.isAdmitted(caller))
      return this.refuse('RPC_REFUSED', 'not admitted: send ADMIT first', caller);
    try {
      switch (m.t) {
        case 'ADMIT':
          return await this.admitRequest(m, caller);
        case 'REGISTER':
          return await this.register(m, payload as Uint8Array, caller);
        case 'WHOIS': {
          const e = await this.names.get(m.name);
          if (!e) return this.refuse('USER_UNKNOWN', m.name);
          return encodeMessage({ t: 'WHOIS_OK', bundle: bundleOf(e) });
        }
        default:
          return this.refuse('RPC_MALFORMED', `a bootstrap does not take ${m.t}`);
      }
    } catch (e) {
      if (isOverlayError(e)) return this.refuse(e.code, e.message, caller);
      this.log.error({ err: (e as Error).message, stack: (e as Error).stack }, 'bootstrap request failed');
      return this.refuse('BAD_CONFIG', 'internal error');
    }
  }

  private refuse(code: ErrorCode, reason: string, caller?: Caller): Uint8Array {
    this.stats.refused++;
    // A peer's bad request is logged with its reason code (fail2ban reads these); a miss, being busy or
    // not ready yet is not the peer's fault.
    if (caller && !NOT_A_REFUSAL.has(code) && !/busy/.test(reason))
      logRefusal(this.log, refusalReasonOf(code), caller.addr, { code, err: reason }, 'peer refused');
    return encodeMessage({ t: 'ERROR', code, reason });
  }

  /**
   * The ring id of a node key: HMAC-SHA-256(secret, domain | key), first 160
   * bits. One id per key, so re-admission cannot move a node; and unknown
   * before admission, so grinding keys offline cannot pick a place in the
   * ring (online, ADMIT is rate-limited per key and per address).
   */
  ringIdFor(nodeKey: Uint8Array): string {
    return createHmac('sha256', this.ringIdSecret)
      .update(RING_ID_DOMAIN)
      .update(nodeKey)
      .digest()
      .subarray(0, 20)
      .toString('hex');
  }

  /**
   * ADMIT, as received. One ring id per node key across the bootstrap set:
   * every key has one ring-id authority among the bootstraps (rendezvous
   * hashing as for names, name-authority.ts), which alone mints its id (see
   * ringIdFor, with its own secret); another bootstrap checks its rate limits
   * and forwards the ADMIT there. Only while the authority does not answer
   * does the receiving bootstrap admit the key itself (at most one more id
   * per bootstrap, never one per call).
   */
  private async admitRequest(m: AdmitMsg, caller: Caller): Promise<Uint8Array> {
    if (m.nodeKey !== undefined) {
      if (!this.isPeerBootstrap(caller.key))
        throw new OverlayError('RPC_REFUSED', 'ADMIT for another node key comes only from a peer bootstrap');
      return encodeMessage(this.admit(m.nodeKey)); // the forwarding bootstrap limited the source address
    }
    const nodeKey = caller.key;
    if (!rawPublicToKeyObject('ed25519', nodeKey)) throw new OverlayError('IDENTITY_BAD_KEY', 'node key');
    // A peer bootstrap asks for the ring's contacts (while founding, every FOUNDING_POLL_MS): not limited.
    if (this.isPeerBootstrap(nodeKey)) return encodeMessage(this.mint(nodeKey));
    const authority = authorityFor(ringIdAuthorityName(nodeKey), this.bootstraps);
    if (bytesEqual(authority.key, this.identity.bundle.sig)) return encodeMessage(this.admit(nodeKey, caller.addr));
    this.limitAdmit(nodeKey, caller.addr);
    const to: NodeRef = { id: nodeIdFromKey(authority.key), addr: authority.addr, key: authority.key };
    const authorityKey = Buffer.from(authority.key).toString('hex');
    // An authority found silent lately is not asked again for a while: the adapter's own ADMIT would time
    // out behind every forward (and its retries hit the per-key limit), so it could never be admitted.
    if ((this.authorityDownUntil.get(authorityKey) ?? 0) <= this.clock.now()) {
      try {
        const answer = await this.endpoint.request(to, SECP2PSIP_METHOD, encodeMessage({ t: 'ADMIT', nodeKey }), {
          timeoutMs: ADMIT_FORWARD_TIMEOUT_MS,
        });
        if (answer instanceof Uint8Array) {
          this.stats.admitForwarded++;
          return answer;
        }
      } catch (e) {
        if (!isOverlayError(e) || !/RPC_(UNREACHABLE|TIMEOUT|TOO_MANY_IN_FLIGHT)/.test(e.code)) throw e;
        this.authorityDownUntil.set(authorityKey, this.clock.now() + AUTHORITY_DOWN_MS);
        this.log.warn({ authority: authority.addr, err: e.message }, 'ring-id authority unreachable; admitting here');
      }
    }
    return encodeMessage(this.mint(nodeKey));
  }

  /**
   * ADMIT here: give `nodeKey` its ring id (always the same one for a key, see ringIdFor; an id stored
   * earlier for the key is kept) and an admission certificate. Rate-limited per key and, when `from`
   * is given, per source address.
   */
  admit(nodeKey: Uint8Array, from?: string): AdmittedMsg {
    if (!rawPublicToKeyObject('ed25519', nodeKey)) throw new OverlayError('IDENTITY_BAD_KEY', 'node key');
    this.limitAdmit(nodeKey, from);
    return this.mint(nodeKey);
  }

  private limitAdmit(nodeKey: Uint8Array, from: string | undefined): void {
    const keyHex = Buffer.from(nodeKey).toString('hex');
    const host = from === undefined ? undefined : sourceHost(from);
    if (
      !this.admitPerKey.allows(keyHex) ||
      (host !== undefined && !this.admitPerAddress.take(host)) ||
      !this.admitPerKey.take(keyHex)
    ) {
      this.stats.admitLimited++;
      this.log.debug({ peer: host }, 'ADMIT refused: rate limit');
      throw new OverlayError('RPC_TOO_MANY_IN_FLIGHT', 'too many admissions: try again later');
    }
  }

  private mint(nodeKey: Uint8Array): AdmittedMsg {
    const now = this.clock.wallNow();
    const nodeId = this.registry.nodeId(nodeKey, now, () => this.ringIdFor(nodeKey));
    const admission = issueAdmission(this.identity, nodeKey, nodeId, this.admissionTtlMs, now);
    this.stats.admitted++;
    this.log.debug({ nodeId }, 'admitted node');
    return {
      t: 'ADMITTED',
      nodeId,
      admission,
      ring: this.contacts(),
      bootstraps: this.bootstraps,
      k: this.k,
      n: this.n,
    };
  }

  private contacts(): RingContact[] {
    const refs = [this.ring.self, ...this.ring.successors.filter((r) => r.id !== this.ring.id)];
    return refs.slice(0, 8).map((r) => ({ id: r.id, addr: r.addr, key: r.key, admission: r.admission }));
  }

  private isPeerBootstrap(key: Uint8Array): boolean {
    return !bytesEqual(key, this.identity.bundle.sig) && this.bootstraps.some((b) => bytesEqual(b.key, key));
  }

  private async register(m: RegisterMsg, raw: Uint8Array, caller: Caller): Promise<Uint8Array> {
    // Back-pressure: a bounded number of registrations at work at once; the rest are refused as busy
    // (the adapter answers its phone 503 with Retry-After) instead of an unbounded backlog of stores
    // that starves the ring's own maintenance.
    if (this.registering >= MAX_REGISTERING) {
      this.stats.busy++;
      throw new OverlayError('RPC_TOO_MANY_IN_FLIGHT', 'bootstrap busy: too many registrations at once');
    }
    this.registering++;
    try {
      return await this.registerNow(m, raw, caller);
    } finally {
      this.registering--;
    }
  }

  private async registerNow(m: RegisterMsg, raw: Uint8Array, caller: Caller): Promise<Uint8Array> {
    const fromPeer = this.isPeerBootstrap(caller.key);
    // Only the adapter itself may register through its node key (a peer bootstrap forwards what it checked).
    if (!fromPeer && !bytesEqual(caller.key, m.node.key))
      throw new OverlayError('RPC_REFUSED', 'REGISTER must come from the node key it names');
    const authority = authorityFor(m.name, this.bootstraps);
    // A shared registry decides between bootstraps itself: no forwarding, so no bootstrap is needed but this one.
    if (!this.names.shared && !bytesEqual(authority.key, this.identity.bundle.sig)) {
      if (fromPeer) throw new OverlayError('BAD_CONFIG', 'bootstraps disagree on the name authority');
      this.stats.forwarded++;
      const to: NodeRef = { id: nodeIdFromKey(authority.key), addr: authority.addr, key: authority.key };
      try {
        const answer = await this.endpoint.request(to, SECP2PSIP_METHOD, raw);
        if (answer instanceof Uint8Array) return answer;
        throw new OverlayError('RPC_MALFORMED', 'authority answered no bytes');
      } catch (e) {
        if (isOverlayError(e)) throw new OverlayError('RPC_UNREACHABLE', `name authority: ${e.message}`);
        throw e;
      }
    }
    // The adapter's address: the caller's, or (forwarded by a peer bootstrap, which checked the node key) its own.
    const source = sourceHost(fromPeer ? m.node.addr : caller.addr);
    return encodeMessage(await this.registerHere(m, source));
  }

  /** Seed IV.2 "Bootstrap Verification", "Public Key Distribution", "Lookup Information Distribution". */
  private async registerHere(m: RegisterMsg, source: string): Promise<RegisteredMsg> {
    const now = this.clock.wallNow();
    const key = this.checkKey(m, now);
    if (!rawPublicToKeyObject('x25519', m.publicKey.sealKey))
      throw new OverlayError('IDENTITY_BAD_KEY', 'sealing key is not an X25519 key');
    if (!key.verify(DOMAIN.register, registerTbs(m), m.sig))
      throw new OverlayError('IDENTITY_BAD_SIGNATURE', 'proof of possession does not verify');
    const loc = m.location;
    if (
      loc.name !== m.name ||
      !bytesEqual(loc.nodeKey, m.node.key) ||
      loc.nodeAddr !== m.node.addr ||
      loc.sipAddr !== m.ip ||
      !key.verify(DOMAIN.location, locationTbs(loc), loc.sig)
    )
      throw new OverlayError('IDENTITY_BAD_SIGNATURE', 'location record does not match or is not signed by the user');
    const admitted = loc.admission
      ? admittedNode(
          loc.admission,
          this.bootstraps.map((b) => b.key),
          now,
        )
      : undefined;
    if (!admitted || !bytesEqual(admitted.nodeKey, loc.nodeKey) || !loc.admission)
      throw new OverlayError('IDENTITY_BAD_CERTIFICATE', 'adapter node is not admitted');
    // Freshness last: junk must not spend the replay cache.
    const fresh = this.replay.check(m.nonce, m.ts, `register:${m.name}`);
    if (!fresh.ok) throw new OverlayError(fresh.code, fresh.reason);

    // Split before the claim, so that the claim stores what is to be published (name-registry.ts).
    const locBytes = encodeLocation(loc);
    const split = await this.split({ name: m.name, ...m.publicKey, registeredAt: now });
    const nodeHex = Buffer.from(m.node.key).toString('hex');
    const policy: NewNamePolicy = {
      nodeKey: m.node.key,
      maxPerNode: this.newNames.perAdapter,
      requireInvite: this.requireInvite,
      invite: m.invite,
    };
    const args = [m.name, m.publicKey, now, this.caBundle ? key.fingerprint() : undefined] as const;
    let claim: ClaimOutcome;
    let synced: Promise<void> | undefined;
    if (this.names.countsRates) {
      // A shared registry counts the rates in the claim's transaction, so every bootstrap sees the same counts.
      const rates = { perMinute: this.newNames.perMinute, perAddressPerMinute: this.newNames.perAddressPerMinute };
      claim = await this.names.claim(
        ...args,
        { ...policy, rates: { ...rates, source } },
        { location: locBytes, pieces: split },
      );
    } else {
      // This bootstrap alone binds its names: the rate check, the claim and the spending run in one synchronous
      // step on its own file, so no other registration can slip in between.
      const own = this.names === this.registry ? this.registry : undefined;
      const known = own ? own.get(m.name) : await this.names.get(m.name);
      if (!known) this.limitNewName(m.name, nodeHex, source);
      const records = { location: locBytes, pieces: split };
      // On the system clock the claim's fsync runs on the thread pool, so other registrations and the ring
      // go on meanwhile (registry.ts claimUnsynced); a simulated clock (in-memory overlays) cannot wait for
      // the disk, so there the commit fsyncs on the event loop, as every other commit of the registry.
      const offLoop = own !== undefined && this.clock instanceof SystemClock;
      claim = own
        ? offLoop
          ? own.claimUnsynced(...args, policy, records)
          : own.claim(...args, policy, records)
        : await this.names.claim(...args, policy, records);
      if (claim.outcome === 'created') {
        this.namesPerKey?.take(nodeHex);
        this.namesPerAddress?.take(source);
      }
      if (offLoop) synced = own.sync();
    }
    // While the claim's fdatasync runs: the set's signature, the lookups of its holders (a FIND carries no
    // record) and the user certificate, for a name bound with its pieces kept. The STOREs wait for the sync
    // and the 'claimed' step (batch-put.ts storeAfter): a power cut must not leave the ring holding records
    // this bootstrap signed for a claim it lost.
    let publishing: Promise<void> | undefined;
    let userCert: Uint8Array | undefined;
    if (synced && (claim.outcome === 'created' || claim.outcome === 'same') && claim.entry.pieces?.length === this.n) {
      const sealed = this.publisher.seal(m.name, claim.entry.pieces, locBytes);
      const claimed = synced.then(() => this.onStep?.('claimed', m.name));
      publishing = this.publisher.put(sealed, claimed);
      // Awaited below once the claim is durable; its failure before then is the claim's own, thrown by `claimed`.
      publishing.catch(() => {});
      userCert = issueUserCert(this.identity, bundleOf(claim.entry), this.clock.wallNow());
      await claimed;
    }
    // Durable before anything leaves on its strength: the records, the answer, a refusal.
    await synced;
    if (claim.outcome === 'taken') {
      this.log.warn({ user: m.name }, 'registration refused: name bound to another key');
      throw new OverlayError('USER_NAME_TAKEN', `'${m.name}' is already registered with another key`);
    }
    if (claim.outcome === 'refused') {
      this.stats.namesRefused++;
      this.log.warn({ user: m.name, node: nodeHex.slice(0, 16), reason: claim.reason }, 'new name refused');
      throw new OverlayError(claim.code, claim.reason);
    }
    const entry = claim.entry;
    if (publishing) await publishing;
    else {
      await this.onStep?.('claimed', m.name);
      let pieces = entry.pieces;
      if (!pieces || pieces.length !== this.n) {
        // Bound before pieces were kept, or with another n: split the bundle as registered.
        pieces = await this.split(bundleOf(entry));
        await this.names.setPieces(m.name, pieces);
      }
      await this.publisher.put(this.publisher.seal(m.name, pieces, locBytes));
    }
    await this.onStep?.('published', m.name);
    this.marks.add(m.name, locBytes);
    this.stats.registered++;
    this.log.info({ user: m.name, outcome: claim.outcome }, 'user registered');
    return {
      t: 'REGISTERED',
      name: m.name,
      registeredAt: entry.registeredAt,
      nodeId: admitted.nodeId,
      admission: loc.admission,
      ring: this.contacts(),
      k: this.k,
      n: this.n,
      bootstraps: this.bootstraps,
      userCert: userCert ?? issueUserCert(this.identity, bundleOf(entry), this.clock.wallNow()),
    };
  }

  /** Write the published marks waiting (published-marks.ts); `retry` false: before the registry closes. */
  flushMarks(retry = true): Promise<void> {
    return this.marks.flush(retry);
  }

  /** Refuse a new name while the adapter or its address has used up its per-minute rate (nothing is spent here). */
  private limitNewName(name: string, nodeHex: string, source: string): void {
    const wait = Math.max(this.namesPerKey?.waitMs(nodeHex) ?? 0, this.namesPerAddress?.waitMs(source) ?? 0);
    if (wait === 0) return;
    this.stats.namesRefused++;
    const retryAfterS = Math.min(3600, Math.ceil(wait / 1000));
    this.log.debug({ user: name, node: nodeHex.slice(0, 16), peer: source, retryAfterS }, 'new name refused: rate');
    throw new OverlayError('USER_NAME_RATE', `too many new names from this adapter; retry after ${retryAfterS} s`);
  }

  /** Relaxed mode: an ad-hoc Ed25519 key. Strict mode: the leaf certificate's key, chaining to the CA bundle. */
  private checkKey(m: RegisterMsg, now: number): UserKey {
    const key = UserKey.decode(m.publicKey.signKey);
    if (!key.ok) throw new OverlayError('IDENTITY_BAD_KEY', key.error);
    if (!this.caBundle) {
      if (key.value.kind !== 'ed25519') throw new OverlayError('IDENTITY_BAD_KEY', 'relaxed mode takes Ed25519 keys');
      return key.value;
    }
    const chain = m.certChain;
    if (!chain || chain.length === 0)
      throw new OverlayError('IDENTITY_BAD_CERTIFICATE', 'strict mode needs a certificate');
    const v = UserKey.fromCertificate(chain[0], chain.slice(1), this.caBundle, now);
    if (!v.ok) throw new OverlayError('IDENTITY_BAD_CERTIFICATE', v.error);
    if (!v.value.key.equals(key.value))
      throw new OverlayError('IDENTITY_BAD_CERTIFICATE', 'certificate is for another key');
    if (!certNamesUser(v.value.certificate.subject, m.name))
      throw new OverlayError('IDENTITY_BAD_CERTIFICATE', `certificate subject does not name '${m.name}'`);
    return key.value;
  }

  /** The n pieces of a key bundle (the splitting library insists on a plain Uint8Array, not a Buffer). */
  private async split(b: ReturnType<typeof bundleOf>): Promise<Uint8Array[]> {
    return (await splitKey(Uint8Array.from(encodeBundle(b)), this.n, this.k)).map(encodePiece);
  }

  /**
   * Ring members to rejoin through after a restart: the adapters of registered
   * users, from their location records (newest first).
   */
  static rejoinContacts(users: readonly RegistryEntry[], bootstrapKeys: Uint8Array[], wallNow: number): NodeRef[] {
    const out: NodeRef[] = [];
    for (const e of [...users].reverse()) {
      const l = e.location ? decodeLocation(e.location) : undefined;
      if (!l?.ok || !l.value.admission) continue;
      const a = admittedNode(l.value.admission, bootstrapKeys, wallNow);
      if (a && bytesEqual(a.nodeKey, l.value.nodeKey) && !out.some((r) => r.id === a.nodeId))
        if (!isRelayAddr(l.value.nodeAddr))
          out.push({ id: a.nodeId, addr: l.value.nodeAddr, key: l.value.nodeKey, admission: l.value.admission });
    }
    return out;
  }

  /** After a restart: the pending registrations, and the records of every name this bootstrap owns. */
  republishAll(): Promise<number> {
    return this.publisher.republishAll();
  }
}

function bundleOf(e: RegistryEntry) {
  return { name: e.name, signKey: e.signKey, sealKey: e.sealKey, registeredAt: e.registeredAt };
}

function certNamesUser(subject: string, name: string): boolean {
  return subject.split(/,\s*/).some((rdn) => rdn === `CN=${name}` || rdn.startsWith(`CN=${name}@`));
}
