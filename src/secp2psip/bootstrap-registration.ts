/**
 * REGISTER at a SecP2PSIP bootstrap (seed 000 IV.2 "Bootstrap Verification",
 * "Public Key Distribution", "Lookup Information Distribution"; Table 1): the
 * checks (proof of possession of the key, or a certificate chaining to the CA
 * in strict mode; the location record and its admission; freshness), the
 * limits on new names, the claim in the registry and its durability, the
 * Shamir split into n pieces, their publication with the user-signed
 * location record (name-publisher.ts), and the REGISTERED answer. A REGISTER
 * for a name another bootstrap is the authority of is forwarded there. The
 * bootstrap's request dispatch is bootstrap-server.ts.
 */
import type { ChordNode } from '../dht/chord/chord-node.ts';
import { nodeIdFromKey } from '../identity/fingerprint.ts';
import type { Identity } from '../identity/identity.ts';
import { rawPublicToKeyObject } from '../identity/keys.ts';
import { ReplayCache } from '../identity/replay-cache.ts';
import { UserKey } from '../identity/user-key.ts';
import type { Caller, NodeRef, RpcEndpoint } from '../rpc/types.ts';
import { encodePiece, splitKey } from '../sharing/index.ts';
import { type Clock, SystemClock } from '../util/clock.ts';
import { isOverlayError, OverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { TokenBuckets } from '../util/token-bucket.ts';
import { bytesEqual } from '../util/bytes.ts';
import { ringContacts, SECP2PSIP_METHOD, sourceHost } from './bootstrap-admission.ts';
import {
  type BootstrapInfo,
  DOMAIN,
  encodeBundle,
  encodeLocation,
  encodeMessage,
  locationTbs,
  type RegisteredMsg,
  type RegisterMsg,
  registerTbs,
} from './messages.ts';
import { issueUserCert } from './user-cert.ts';
import { authorityFor } from './name-authority.ts';
import type { NamePublisher } from './name-publisher.ts';
import { PublishedMarks } from './published-marks.ts';
import type { NameRegistry } from './name-registry.ts';
import type { ClaimOutcome, NewNamePolicy, Registry, RegistryEntry } from './registry.ts';
import { admittedNode } from './ring-records.ts';

/** Registrations a bootstrap works on at once; more are refused as busy. */
export const MAX_REGISTERING = 64;

/** The steps of a registration after its checks (name-registry.ts), for tests that crash between them. */
export type RegistrationStep = 'claimed' | 'published' | 'marked';

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

/** What registering needs of its bootstrap (BootstrapServer passes its own). */
export interface RegistrationsComponents {
  identity: Identity;
  endpoint: RpcEndpoint;
  ring: ChordNode;
  registry: Registry;
  names: NameRegistry;
  publisher: NamePublisher;
  clock: Clock;
  log: Logger;
  bootstraps: BootstrapInfo[];
  k: number;
  n: number;
  /** The bootstrap's counters (BootstrapServer.stats): these are counted here. */
  stats: { registered: number; namesRefused: number; forwarded: number; busy: number };
  /** Strict mode: the trust anchors user certificates chain to. */
  caBundle?: (string | Uint8Array)[];
  onStep?: (step: RegistrationStep, name: string) => void | Promise<void>;
  isPeerBootstrap(key: Uint8Array): boolean;
}

export interface RegistrationsInit {
  /** Accepted clock difference for REGISTER timestamps (default 30 s). */
  windowMs?: number;
  newNames?: NewNameLimits;
  requireInvite?: boolean;
}

export class Registrations {
  private readonly c: RegistrationsComponents;
  /** Registrations at work right now (see register). */
  private registering = 0;
  private readonly replay: ReplayCache;
  private newNames: NewNameLimits;
  private requireInvite: boolean;
  private namesPerKey?: TokenBuckets;
  private namesPerAddress?: TokenBuckets;
  /** Registrations answered and not yet marked published. */
  private readonly marks: PublishedMarks;

  constructor(c: RegistrationsComponents, init: RegistrationsInit) {
    this.c = c;
    this.replay = new ReplayCache({ clock: c.clock, windowMs: init.windowMs ?? 30_000 });
    this.newNames = { ...init.newNames };
    this.requireInvite = init.requireInvite === true;
    this.setNewNameLimits(this.newNames);
    this.marks = new PublishedMarks(c.names, c.clock, c.log, (name) => c.onStep?.('marked', name));
  }

  /** Write the published marks waiting (published-marks.ts); `retry` false: before the registry closes. */
  flushMarks(retry = true): Promise<void> {
    return this.marks.flush(retry);
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
      n ? new TokenBuckets(this.c.clock, { burst: n, perSecond: n / 60 }) : undefined;
    this.namesPerKey = perMinute(limits.perMinute);
    this.namesPerAddress = perMinute(limits.perAddressPerMinute);
  }

  async register(m: RegisterMsg, raw: Uint8Array, caller: Caller): Promise<Uint8Array> {
    // Back-pressure: a bounded number of registrations at work at once; the rest are refused as busy
    // (the adapter answers its phone 503 with Retry-After) instead of an unbounded backlog of stores
    // that starves the ring's own maintenance.
    if (this.registering >= MAX_REGISTERING) {
      this.c.stats.busy++;
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
    const fromPeer = this.c.isPeerBootstrap(caller.key);
    // Only the adapter itself may register through its node key (a peer bootstrap forwards what it checked).
    if (!fromPeer && !bytesEqual(caller.key, m.node.key))
      throw new OverlayError('RPC_REFUSED', 'REGISTER must come from the node key it names');
    const authority = authorityFor(m.name, this.c.bootstraps);
    // A shared registry decides between bootstraps itself: no forwarding, so no bootstrap is needed but this one.
    if (!this.c.names.shared && !bytesEqual(authority.key, this.c.identity.bundle.sig)) {
      if (fromPeer) throw new OverlayError('BAD_CONFIG', 'bootstraps disagree on the name authority');
      this.c.stats.forwarded++;
      const to: NodeRef = { id: nodeIdFromKey(authority.key), addr: authority.addr, key: authority.key };
      try {
        const answer = await this.c.endpoint.request(to, SECP2PSIP_METHOD, raw);
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
    const now = this.c.clock.wallNow();
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
          this.c.bootstraps.map((b) => b.key),
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
    const args = [m.name, m.publicKey, now, this.c.caBundle ? key.fingerprint() : undefined] as const;
    let claim: ClaimOutcome;
    let synced: Promise<void> | undefined;
    if (this.c.names.countsRates) {
      // A shared registry counts the rates in the claim's transaction, so every bootstrap sees the same counts.
      const rates = { perMinute: this.newNames.perMinute, perAddressPerMinute: this.newNames.perAddressPerMinute };
      claim = await this.c.names.claim(
        ...args,
        { ...policy, rates: { ...rates, source } },
        { location: locBytes, pieces: split },
      );
    } else {
      // This bootstrap alone binds its names: the rate check, the claim and the spending run in one synchronous
      // step on its own file, so no other registration can slip in between.
      const own = this.c.names === this.c.registry ? this.c.registry : undefined;
      const known = own ? own.get(m.name) : await this.c.names.get(m.name);
      if (!known) this.limitNewName(m.name, nodeHex, source);
      const records = { location: locBytes, pieces: split };
      // On the system clock the claim's fsync runs on the thread pool, so other registrations and the ring
      // go on meanwhile (registry.ts claimUnsynced); a simulated clock (in-memory overlays) cannot wait for
      // the disk, so there the commit fsyncs on the event loop, as every other commit of the registry.
      const offLoop = own !== undefined && this.c.clock instanceof SystemClock;
      claim = own
        ? offLoop
          ? own.claimUnsynced(...args, policy, records)
          : own.claim(...args, policy, records)
        : await this.c.names.claim(...args, policy, records);
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
    if (
      synced &&
      (claim.outcome === 'created' || claim.outcome === 'same') &&
      claim.entry.pieces?.length === this.c.n
    ) {
      const sealed = this.c.publisher.seal(m.name, claim.entry.pieces, locBytes);
      const claimed = synced.then(() => this.c.onStep?.('claimed', m.name));
      publishing = this.c.publisher.put(sealed, claimed);
      // Awaited below once the claim is durable; its failure before then is the claim's own, thrown by `claimed`.
      publishing.catch(() => {});
      userCert = issueUserCert(this.c.identity, bundleOf(claim.entry), this.c.clock.wallNow());
      await claimed;
    }
    // Durable before anything leaves on its strength: the records, the answer, a refusal.
    await synced;
    if (claim.outcome === 'taken') {
      this.c.log.warn({ user: m.name }, 'registration refused: name bound to another key');
      throw new OverlayError('USER_NAME_TAKEN', `'${m.name}' is already registered with another key`);
    }
    if (claim.outcome === 'refused') {
      this.c.stats.namesRefused++;
      this.c.log.warn({ user: m.name, node: nodeHex.slice(0, 16), reason: claim.reason }, 'new name refused');
      throw new OverlayError(claim.code, claim.reason);
    }
    const entry = claim.entry;
    if (publishing) await publishing;
    else {
      await this.c.onStep?.('claimed', m.name);
      let pieces = entry.pieces;
      if (!pieces || pieces.length !== this.c.n) {
        // Bound before pieces were kept, or with another n: split the bundle as registered.
        pieces = await this.split(bundleOf(entry));
        await this.c.names.setPieces(m.name, pieces);
      }
      await this.c.publisher.put(this.c.publisher.seal(m.name, pieces, locBytes));
    }
    await this.c.onStep?.('published', m.name);
    this.marks.add(m.name, locBytes);
    this.c.stats.registered++;
    this.c.log.info({ user: m.name, outcome: claim.outcome }, 'user registered');
    return {
      t: 'REGISTERED',
      name: m.name,
      registeredAt: entry.registeredAt,
      nodeId: admitted.nodeId,
      admission: loc.admission,
      ring: ringContacts(this.c.ring),
      k: this.c.k,
      n: this.c.n,
      bootstraps: this.c.bootstraps,
      userCert: userCert ?? issueUserCert(this.c.identity, bundleOf(entry), this.c.clock.wallNow()),
    };
  }

  /** Refuse a new name while the adapter or its address has used up its per-minute rate (nothing is spent here). */
  private limitNewName(name: string, nodeHex: string, source: string): void {
    const wait = Math.max(this.namesPerKey?.waitMs(nodeHex) ?? 0, this.namesPerAddress?.waitMs(source) ?? 0);
    if (wait === 0) return;
    this.c.stats.namesRefused++;
    const retryAfterS = Math.min(3600, Math.ceil(wait / 1000));
    this.c.log.debug({ user: name, node: nodeHex.slice(0, 16), peer: source, retryAfterS }, 'new name refused: rate');
    throw new OverlayError('USER_NAME_RATE', `too many new names from this adapter; retry after ${retryAfterS} s`);
  }

  /** Relaxed mode: an ad-hoc Ed25519 key. Strict mode: the leaf certificate's key, chaining to the CA bundle. */
  private checkKey(m: RegisterMsg, now: number): UserKey {
    const key = UserKey.decode(m.publicKey.signKey);
    if (!key.ok) throw new OverlayError('IDENTITY_BAD_KEY', key.error);
    if (!this.c.caBundle) {
      if (key.value.kind !== 'ed25519') throw new OverlayError('IDENTITY_BAD_KEY', 'relaxed mode takes Ed25519 keys');
      return key.value;
    }
    const chain = m.certChain;
    if (!chain || chain.length === 0)
      throw new OverlayError('IDENTITY_BAD_CERTIFICATE', 'strict mode needs a certificate');
    const v = UserKey.fromCertificate(chain[0], chain.slice(1), this.c.caBundle, now);
    if (!v.ok) throw new OverlayError('IDENTITY_BAD_CERTIFICATE', v.error);
    if (!v.value.key.equals(key.value))
      throw new OverlayError('IDENTITY_BAD_CERTIFICATE', 'certificate is for another key');
    if (!certNamesUser(v.value.certificate.subject, m.name))
      throw new OverlayError('IDENTITY_BAD_CERTIFICATE', `certificate subject does not name '${m.name}'`);
    return key.value;
  }

  /** The n pieces of a key bundle (the splitting library insists on a plain Uint8Array, not a Buffer). */
  private async split(b: ReturnType<typeof bundleOf>): Promise<Uint8Array[]> {
    return (await splitKey(Uint8Array.from(encodeBundle(b)), this.c.n, this.c.k)).map(encodePiece);
  }
}

export function bundleOf(e: RegistryEntry) {
  return { name: e.name, signKey: e.signKey, sealKey: e.sealKey, registeredAt: e.registeredAt };
}

function certNamesUser(subject: string, name: string): boolean {
  return subject.split(/,\s*/).some((rdn) => rdn === `CN=${name}` || rdn.startsWith(`CN=${name}@`));
}
