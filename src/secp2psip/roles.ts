/**
 * One assembly per SecP2PSIP role, used by the TLS daemons (daemon.ts) and the
 * in-memory overlay (src/harness/memory-overlay.ts) alike, so the ring
 * options, their defaults and the joining policy exist once. The caller
 * brings the transport: a function that opens the role's RPC endpoint once
 * its ring id is known.
 *
 * - Bootstrap: ring id from its own registry, ring members asked of its peer
 *   bootstraps and of the adapters of its registered users, joined (or its
 *   place taken up again, or a ring founded in order: ring-join.ts), then the
 *   BootstrapServer answers requests and republishes its users.
 * - Adapter: admitted by the first bootstrap of the set that answers (tried
 *   in order, rounds spaced by a growing wait: an adapter started while its
 *   configured bootstrap is down uses another, and one started before any is
 *   up waits for it), then joined through the members the admission names.
 */
import { reachable, relayThrough } from './relay-client.ts';
import { ChordNode } from '../dht/chord/chord-node.ts';
import { type ChordInit, MAX_STABILIZE_FACTOR } from '../dht/chord/chord-types.ts';
import { defaultValidator } from '../dht/store/validators.ts';
import { nodeIdFromKey } from '../identity/fingerprint.ts';
import type { Identity } from '../identity/identity.ts';
import type { NodeRef, RpcEndpoint } from '../rpc/types.ts';
import { bytesEqual } from '../util/bytes.ts';
import type { Clock } from '../util/clock.ts';
import { isOverlayError, OverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import type { Metrics } from '../util/metrics.ts';
import type { Random } from '../util/random.ts';
import { AdapterNode, type AdapterNodeInit, requestAdmission } from './adapter-node.ts';
import { type BootstrapInit, BootstrapServer, type NewNameLimits } from './bootstrap-server.ts';
import type { LocalPhones } from './local-phones.ts';
import type { AdmittedMsg, BootstrapInfo } from './messages.ts';
import type { NameRegistry } from './name-registry.ts';
import type { Registry } from './registry.ts';
import { admittedRef, bootstrapWrittenValidator } from './ring-records.ts';
import { MAILBOX_NAMESPACE, mailboxValidator } from './mailbox-records.ts';
import { PRESENCE_NAMESPACE, presenceValidator } from './presence-records.ts';
import {
  type BootstrapJoin,
  FOUNDING_POLL_MS,
  FOUNDING_STEP_MS,
  foundingRank,
  joinAsBootstrap,
  joinRing,
  leaveRing,
  peerContacts,
  sleep,
} from './ring-join.ts';
import type { TrustStore } from './trust-store.ts';
import type { UserKeyStore } from './user-keys.ts';
import type { PhoneInbox } from './messaging.ts';
import type { PhonePresence } from './presence.ts';
import type { DeliveredLog } from './mailbox.ts';

/** Ring settings every SecP2PSIP member shares; the defaults live here only. */
export interface RingSettings {
  /** Chord maintenance period (ms, default 1000). */
  stabilizeMs?: number;
  /** Per-RPC timeout of ring calls (ms, default 2000). */
  rpcTimeoutMs?: number;
}

export const DEFAULT_STABILIZE_MS = 1000;
export const DEFAULT_RING_RPC_TIMEOUT_MS = 2000;

/** Chord options of a SecP2PSIP member: admitted ids only, bootstrap-written records, dispatch by the role. */
export function ringOptions(keys: Iterable<Uint8Array>, clock: Clock, s: RingSettings = {}): ChordInit {
  const list = [...keys];
  const stabilizeMs = s.stabilizeMs ?? DEFAULT_STABILIZE_MS;
  return {
    verifyRef: admittedRef(list, () => clock.wallNow()),
    // Mailboxes (offline messages) are written by users holding a bootstrap-signed certificate, not by bootstraps.
    store: {
      validators: {
        '': bootstrapWrittenValidator(list, defaultValidator()),
        [MAILBOX_NAMESPACE]: mailboxValidator(list),
        [PRESENCE_NAMESPACE]: presenceValidator(list),
      },
    },
    installHandler: false,
    stabilizeMs,
    // Adaptive stabilization (dht/chord/pacing.ts): at rest the tick backs off to this, and any change a member
    // observes brings it back to stabilizeMs at once.
    maxStabilizeMs: MAX_STABILIZE_FACTOR * stabilizeMs,
    rpcTimeoutMs: s.rpcTimeoutMs ?? DEFAULT_RING_RPC_TIMEOUT_MS,
  };
}

/** A source of its own for each part when the random source can fork (a seeded simulation), else the same one. */
function forkOf(r: Random): Random {
  const f = (r as { fork?: () => Random }).fork;
  return f ? f.call(r) : r;
}

/** The ring id and admission a member's endpoint presents. */
export interface SelfAdmission {
  id: string;
  admission: Uint8Array;
}

export interface RoleComponents {
  identity: Identity;
  clock: Clock;
  random: Random;
  logger?: Logger;
  /** Where the ring reports lookup hops and RPC round trips (default: not kept). */
  metrics?: Metrics;
}

export interface BootstrapRoleComponents extends RoleComponents {
  /** The bootstrap's own file: ring ids, and names unless `names` is given. */
  registry: Registry;
  /** A registry of names shared by the set (registry-pg.ts); default: `registry`. */
  names?: NameRegistry;
  /** Open the RPC endpoint under this ring id; `keys` are the bootstrap keys of the set (this one included). */
  listen(self: SelfAdmission, keys: readonly Uint8Array[]): Promise<RpcEndpoint>;
}

export interface BootstrapRoleInit extends RingSettings {
  k: number;
  n: number;
  /** Every bootstrap of the overlay (this one is added if missing). */
  peers?: BootstrapInfo[];
  caBundle?: (string | Uint8Array)[];
  /** A ring member to join through; default: rejoin via known members, else found a ring in order. */
  join?: NodeRef;
  /** Limits on new names and enrolment tokens (bootstrap-server.ts). */
  newNames?: NewNameLimits;
  requireInvite?: boolean;
  /** Awaited after each step of a registration (bootstrap-server.ts; tests crash there). */
  onStep?: BootstrapInit['onStep'];
  /** Founding order step and poll (ms; defaults 5000 and 500). */
  foundingStepMs?: number;
  foundingPollMs?: number;
}

export interface BootstrapRole {
  server: BootstrapServer;
  ring: ChordNode;
  endpoint: RpcEndpoint;
  info: BootstrapInfo;
  /** How it took its place: joined a ring, took up its listed place again, or founded one. */
  joined: BootstrapJoin;
  /** Leave the ring gracefully (bounded); the endpoint and registry stay open. */
  leave(): Promise<void>;
}

export async function startBootstrapRole(c: BootstrapRoleComponents, o: BootstrapRoleInit): Promise<BootstrapRole> {
  const log = c.logger ?? silentLogger;
  const { identity, registry, clock, random } = c;
  const key = identity.bundle.sig;
  const self = BootstrapServer.selfAdmission(identity, registry, random, clock.wallNow());
  const given = o.peers ?? [];
  const keys = given.some((p) => bytesEqual(p.key, key)) ? given.map((p) => p.key) : [...given.map((p) => p.key), key];
  const endpoint = await c.listen(self, keys);
  const info: BootstrapInfo = { addr: endpoint.self.addr, key };
  const peers = given.some((p) => bytesEqual(p.key, key)) ? given : [...given, info];
  const ring = ChordNode.create(
    { endpoint, clock, random: forkOf(random), logger: log, metrics: c.metrics },
    ringOptions(keys, clock, o),
  );
  const contacts = o.join
    ? [o.join]
    : [
        ...(await peerContacts(endpoint, peers, key, log)),
        ...BootstrapServer.rejoinContacts(await (c.names ?? registry).all(), keys, clock.wallNow()),
      ];
  const step = o.foundingStepMs ?? FOUNDING_STEP_MS;
  // Nothing answers requests until the join is done (the server installs the handler): a node not yet on
  // the ring would answer lookups as a ring of its own, and entries the ring still has for our id lead here.
  const joined = await joinAsBootstrap({ ring, clock, logger: log }, key, contacts, {
    waitMs: o.join ? 0 : foundingRank(peers, key) * step,
    pollMs: o.foundingPollMs ?? FOUNDING_POLL_MS,
    refresh: () => peerContacts(endpoint, peers, key, log, true),
  });
  const server = new BootstrapServer(
    { identity, endpoint, ring, registry, names: c.names, clock, random: forkOf(random), logger: log },
    {
      k: o.k,
      n: o.n,
      bootstraps: peers,
      caBundle: o.caBundle,
      newNames: o.newNames,
      requireInvite: o.requireInvite,
      onStep: o.onStep,
    },
  );
  server.republishAll().then(
    (n) => n > 0 && log.info({ users: n }, 'republished registered users'),
    (e) => log.warn({ err: (e as Error).message }, 'republish failed'),
  );
  return { server, ring, endpoint, info, joined, leave: () => leaveRing({ ring, clock, logger: log }) };
}

/** How long and how often an adapter keeps asking the bootstraps for admission at start. */
export interface AdmissionRetry {
  /** Give up after this much time (ms, default 120 s). */
  budgetMs?: number;
  /** First wait between rounds over the set, doubled each round up to `maxWaitMs` (ms; defaults 500 and 10 s). */
  firstWaitMs?: number;
  maxWaitMs?: number;
}

export const DEFAULT_ADMISSION_BUDGET_MS = 120_000;

/**
 * ADMIT at the first bootstrap of `candidates` that answers, in order; a round
 * over all of them is repeated with a growing wait until `budgetMs` has passed.
 * Refusals are not final either: a bootstrap whose disk fails answers an
 * internal error, and another may admit us.
 */
export async function admitWithFailover(
  c: { endpoint: RpcEndpoint; clock: Clock; logger?: Logger },
  candidates: readonly BootstrapInfo[],
  retry: AdmissionRetry = {},
): Promise<{ admitted: AdmittedMsg; via: BootstrapInfo }> {
  const log = c.logger ?? silentLogger;
  if (candidates.length === 0) throw new OverlayError('BAD_CONFIG', 'no bootstrap to ask for admission');
  const end = c.clock.now() + (retry.budgetMs ?? DEFAULT_ADMISSION_BUDGET_MS);
  let wait = retry.firstWaitMs ?? 500;
  const failures = new Map<string, string>();
  for (let round = 0; ; round++) {
    for (const b of candidates) {
      try {
        const admitted = await requestAdmission(c.endpoint, b);
        if (round > 0 || b !== candidates[0]) log.info({ bootstrap: b.addr, round }, 'admitted by bootstrap');
        return { admitted, via: b };
      } catch (e) {
        // A bootstrap's own failure (a disk fault answers "internal error") is not this adapter's configuration.
        const why = isOverlayError(e, 'BAD_CONFIG')
          ? `the bootstrap failed: ${e.reason ?? e.message}`
          : (e as Error).message;
        failures.set(b.addr, why);
        log.warn({ bootstrap: b.addr, err: why, round }, 'bootstrap did not admit this adapter');
      }
    }
    const left = end - c.clock.now();
    if (left <= 0) break;
    await sleep(c.clock, Math.min(wait, left));
    wait = Math.min(wait * 2, retry.maxWaitMs ?? 10_000);
  }
  const why = [...failures].map(([addr, err]) => `${addr}: ${err}`).join('; ');
  throw new OverlayError('RPC_UNREACHABLE', `no bootstrap admitted this adapter (${why})`);
}

export interface AdapterRoleComponents<P extends LocalPhones = LocalPhones> extends RoleComponents {
  trust: TrustStore;
  /** The users' phones registered at this adapter (the 302's contacts). */
  phones: P;
  /** Where users' keys live (default: in memory). */
  keys?: UserKeyStore;
  /** Where verified instant messages go to the users' phones (messaging.ts). */
  inbox?: PhoneInbox;
  /** The phones' presence subscriptions and registrations (presence.ts). */
  presencePhones?: PhonePresence;
  /** Nonces of the messages delivered here (mailbox.ts). */
  delivered?: DeliveredLog;
  /** A short-lived endpoint with the node key's own id, for ADMIT (closed after). */
  admissionEndpoint(): Promise<RpcEndpoint>;
  /** Open the ring endpoint under the admitted id; `keys` are the bootstrap keys of the set. */
  listen(self: SelfAdmission, keys: readonly Uint8Array[]): Promise<RpcEndpoint>;
}

export interface AdapterRoleInit
  extends RingSettings,
    Omit<AdapterNodeInit, 'admitted' | 'bootstrap' | 'sipAddr'>,
    AdmissionRetry {
  /** The bootstraps to ask for admission, in order (the configured one first). */
  bootstraps: readonly BootstrapInfo[];
  /** This adapter's SIP host:port (seed Table 1 "IP"). */
  sipAddr: string;
  /**
   * Ask the bootstrap that admitted us to dial our ring address back before joining (rpc/relay-dialback.ts), and refuse to
   * start when it cannot: a member nobody can dial leaves a hole in the ring. Off in the in-memory world.
   */
  checkReachability?: boolean;
  /** Join as a client through relays at once (a NAT without port forward, known beforehand). */
  behindNat?: boolean;
  /** A client: how often it renews its relays (ms, default 20 s); one that misses two renewals is replaced. */
  relayRenewMs?: number;
  /**
   * Answer SECP2PSIP INVITEs "not ready" from the moment the node is reachable until its owner sets
   * `node.ready` (a restart re-registering its users: callers get 503, never "unknown user").
   */
  holdUntilReady?: boolean;
}

export interface AdapterRole<P extends LocalPhones = LocalPhones> {
  node: AdapterNode<P>;
  ring: ChordNode;
  endpoint: RpcEndpoint;
  admitted: AdmittedMsg;
  /** The bootstrap that admitted this adapter (it registers users there). */
  bootstrap: BootstrapInfo;
  /** Behind a NAT: on the ring as a client holding no range, reached through relays (its ring address names them). */
  client: boolean;
  leave(): Promise<void>;
}

export async function startAdapterRole<P extends LocalPhones>(
  c: AdapterRoleComponents<P>,
  o: AdapterRoleInit,
): Promise<AdapterRole<P>> {
  const log = c.logger ?? silentLogger;
  const { clock, random, trust } = c;
  const started = clock.now();
  // ADMIT over a short-lived link: the bootstrap assigns our ring id.
  const temp = await c.admissionEndpoint();
  let got: Awaited<ReturnType<typeof admitWithFailover>>;
  try {
    got = await admitWithFailover({ endpoint: temp, clock, logger: log }, o.bootstraps, o);
  } finally {
    await temp.close();
  }
  const { admitted, via } = got;
  log.info({ bootstrap: via.addr, ms: clock.now() - started }, 'admitted');
  const keys = admitted.bootstraps.map((b) => b.key);
  const endpoint = await c.listen({ id: admitted.nodeId, admission: admitted.admission }, keys);
  const client =
    o.behindNat === true || (o.checkReachability ? !(await reachable(endpoint, admitted, via, log)) : false);
  const relays = client ? await relayThrough(endpoint, admitted, via, clock, log, o.relayRenewMs) : undefined;
  const ring = ChordNode.create(
    { endpoint, clock, random: forkOf(random), logger: log, metrics: c.metrics },
    ringOptions(keys, clock, o),
  );
  // The bootstrap that admitted us is an anchor: whenever this node is cut off from the ring (a partition,
  // an overload), it keeps probing it with backoff and merges back through it (RememberedMembers).
  ring.remember(admitted.ring.filter((r) => keys.some((k) => bytesEqual(k, r.key))));
  const node = new AdapterNode<P>(
    {
      endpoint,
      ring,
      trust,
      phones: c.phones,
      keys: c.keys,
      inbox: c.inbox,
      presencePhones: c.presencePhones,
      delivered: c.delivered,
      clock,
      random: forkOf(random),
      logger: log,
    },
    {
      admitted,
      bootstrap: via,
      sipAddr: o.sipAddr,
      mode: o.mode,
      rebuild: o.rebuild,
      timeoutMs: o.timeoutMs,
      windowMs: o.windowMs,
      onEvent: o.onEvent,
      cacheMs: o.cacheMs,
      newNamesPerMinute: o.newNamesPerMinute,
      mailboxTtlMs: o.mailboxTtlMs,
    },
  );
  if (o.holdUntilReady) node.ready = false;
  try {
    // A node key keeps its ring id across admissions: after a restart the ring may still list us, so take up our place.
    if (relays) {
      await ring.joinAsClient(admitted.ring);
      // A lost relay is replaced by a member the ring knows; our users' records then name the new set.
      relays.members = () => [...ring.successors, ...ring.fingers.distinct()];
      relays.onChange = () => {
        for (const name of node.users.keys())
          node
            .registerUser(name)
            .catch((e) => log.warn({ user: name, err: (e as Error).message }, 'register again failed'));
      };
      log.info({ addr: endpoint.self.addr, ms: clock.now() - started }, 'on the ring as a client, through relays');
    } else {
      const how = await joinRing({ ring, clock, logger: log }, admitted.ring);
      if (how === 'listed') await ring.rejoin(admitted.ring);
      log.info({ how, addr: endpoint.self.addr, ms: clock.now() - started }, 'on the ring');
    }
  } catch (e) {
    relays?.stop();
    ring.stop();
    await endpoint.close();
    throw e;
  }
  return {
    node,
    ring,
    endpoint,
    admitted,
    bootstrap: via,
    client: relays !== undefined,
    leave: async () => {
      relays?.stop();
      await leaveRing({ ring, clock, logger: log });
    },
  };
}

/** The ref of a node key before admission (its id is the key's SHA-1). */
export function unadmittedRef(identity: Identity, addr: string): NodeRef {
  return { id: nodeIdFromKey(identity.bundle.sig), addr, key: identity.bundle.sig };
}
