/**
 * The SecP2PSIP bootstrap server, seed 000 IV.2 (Figure 2): admits adapters
 * to the ring (ADMIT: the bootstrap picks each node's ring id,
 * bootstrap-admission.ts), registers users (REGISTER, Table 1,
 * bootstrap-registration.ts): name uniqueness, proof of possession of the key
 * (or a certificate chaining to the CA in strict mode), Shamir split into n
 * pieces stored at `Username.i`, the user-signed location record at
 * `Username`, and answers REGISTERED with the ring's contact info. This file
 * holds what ties them together: the configuration, the request dispatch
 * (who may ask what before admission), WHOIS, and the refusals.
 *
 * It is also a ring member: with no adapters yet the pieces must live
 * somewhere. With several bootstraps on registries of their own, each name
 * has one authority (name-authority.ts) and a REGISTER for a name owned by
 * another bootstrap is forwarded there; with a registry they share
 * (registry-pg.ts), any bootstrap binds any name and none forwards.
 */
import { isRelayAddr } from '../rpc/relay.ts';
import { DIALBACK_METHOD, DialBackService } from '../rpc/relay-dialback.ts';
import { issueAdmission } from '../identity/admission.ts';
import type { Identity } from '../identity/identity.ts';
import type { ChordNode } from '../dht/chord/chord-node.ts';
import type { Caller, NodeRef, Payload, RpcEndpoint } from '../rpc/types.ts';
import type { Clock } from '../util/clock.ts';
import { type ErrorCode, isOverlayError, OverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import type { Random } from '../util/random.ts';
import type { TokenBucketLimit } from '../util/token-bucket.ts';
import { type AdmittedMsg, type BootstrapInfo, decodeLocation, decodeMessage, encodeMessage } from './messages.ts';
import { authorityFor } from './name-authority.ts';
import { NamePublisher } from './name-publisher.ts';
import type { NameRegistry } from './name-registry.ts';
import type { Registry, RegistryEntry } from './registry.ts';
import { admittedNode, admittedRef } from './ring-records.ts';
import { bytesEqual } from '../util/bytes.ts';
import { logRefusal, refusalReasonOf } from '../util/refusal.ts';
import { Admissions, SECP2PSIP_METHOD } from './bootstrap-admission.ts';
import { bundleOf, type NewNameLimits, type RegistrationStep, Registrations } from './bootstrap-registration.ts';

// Callers import these with the server.
export { DEFAULT_ADMIT_LIMITS, SECP2PSIP_METHOD } from './bootstrap-admission.ts';
export {
  DEFAULT_NEW_NAME_LIMITS,
  MAX_REGISTERING,
  type NewNameLimits,
  type RegistrationStep,
} from './bootstrap-registration.ts';

/** Error answers that are no fault of the peer: not logged as refusals. */
const NOT_A_REFUSAL = new Set<ErrorCode>(['USER_UNKNOWN', 'NOT_READY', 'BAD_CONFIG', 'TIMEOUT', 'DHT_LOOKUP_FAILED']);

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
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly caBundle?: (string | Uint8Array)[];
  private readonly admittedRefs = new WeakSet<NodeRef>();
  /** ADMIT: ring ids, admission certificates, their rate limits and forwarding (bootstrap-admission.ts). */
  private readonly admissions: Admissions;
  /** REGISTER: checks, new-name limits, claim, publication (bootstrap-registration.ts). */
  private readonly registrations: Registrations;
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
    this.publisher = new NamePublisher(
      { identity: this.identity, ring: this.ring, names: this.names, clock: this.clock, logger: this.log },
      {
        k: this.k,
        n: this.n,
        // With a shared registry too, each bootstrap republishes at start only the names rendezvous gives it.
        owns: (name) => bytesEqual(authorityFor(name, this.bootstraps).key, this.identity.bundle.sig),
      },
    );
    const parts = {
      identity: this.identity,
      endpoint: this.endpoint,
      ring: this.ring,
      registry: this.registry,
      clock: this.clock,
      log: this.log,
      bootstraps: this.bootstraps,
      k: this.k,
      n: this.n,
      stats: this.stats,
      isPeerBootstrap: (key: Uint8Array) => this.isPeerBootstrap(key),
    };
    this.admissions = new Admissions(parts, init);
    this.registrations = new Registrations(
      { ...parts, names: this.names, publisher: this.publisher, caBundle: this.caBundle, onStep: init.onStep },
      init,
    );
    c.endpoint.onRequest((method, payload, caller) => this.onRequest(method, payload, caller));
    this.publisher.start();
  }

  /**
   * New limits on new names, and whether they need an enrolment token, while
   * running (a configuration reload). The per-minute buckets start full again:
   * a reload may let one more burst through, never fewer names than the new limit.
   */
  setNewNameLimits(limits: NewNameLimits, requireInvite?: boolean): void {
    this.registrations.setNewNameLimits(limits, requireInvite);
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
          return await this.admissions.request(m, caller);
        case 'REGISTER':
          return await this.registrations.register(m, payload as Uint8Array, caller);
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

  /** The ring id of a node key (bootstrap-admission.ts ringIdFor). */
  ringIdFor(nodeKey: Uint8Array): string {
    return this.admissions.ringIdFor(nodeKey);
  }

  /** ADMIT here, rate-limited (bootstrap-admission.ts admit). */
  admit(nodeKey: Uint8Array, from?: string): AdmittedMsg {
    return this.admissions.admit(nodeKey, from);
  }

  private isPeerBootstrap(key: Uint8Array): boolean {
    return !bytesEqual(key, this.identity.bundle.sig) && this.bootstraps.some((b) => bytesEqual(b.key, key));
  }

  /** Write the published marks waiting (published-marks.ts); `retry` false: before the registry closes. */
  flushMarks(retry = true): Promise<void> {
    return this.registrations.flushMarks(retry);
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
