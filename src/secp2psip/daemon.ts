/**
 * Start a bootstrap server or an adapter on real sockets: TLS 1.3 RPC with
 * pinned keys between ring members, UDP+TCP SIP towards the phone. Used by
 * the `bootstrap`, `adapter` and `demo` commands, the end-to-end tests and the
 * benchmark. State lives under the data directory: `node/identity.pem`
 * (0600), `registry.sqlite` or `trust.sqlite` and `bindings.sqlite` (the
 * phones' registrations), `users/<name>.pem` (0600).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { ChordNode } from '../dht/chord/chord-node.ts';
import { defaultValidator } from '../dht/store/validators.ts';
import { Identity } from '../identity/identity.ts';
import { TlsRpcEndpoint } from '../rpc/tls-endpoint.ts';
import { defaultVerifyRef } from '../rpc/verify-ref.ts';
import { rawEd25519PublicKey } from '../rpc/tls-cert.ts';
import type { NodeRef } from '../rpc/types.ts';
import { SipElement } from '../sip/element.ts';
import { Registrar, type StoredBinding } from '../sip/registrar.ts';
import { SqliteBindingStore } from '../sip/registrar-sqlite.ts';
import { TransportStack } from '../sip/transport-stack.ts';
import { type Clock, SystemClock } from '../util/clock.ts';
import { bytesEqual } from '../util/bytes.ts';
import { isOverlayError, OverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { CryptoRandom } from '../util/random.ts';
import { Adapter } from './adapter.ts';
import { AdapterNode, requestAdmission } from './adapter-node.ts';
import { BootstrapServer } from './bootstrap-server.ts';
import type { FlowEvent, SecurityMode } from './call-common.ts';
import type { RebuildMode } from './key-lookup.ts';
import { RegisteredPhones } from './local-phones.ts';
import type { BootstrapInfo } from './messages.ts';
import { Registry } from './registry.ts';
import { admittedRef, bootstrapWrittenValidator } from './ring-records.ts';
import { TrustStore } from './trust-store.ts';
import { FileUserKeys } from './user-keys.ts';

export interface BootstrapDaemonOptions {
  host: string;
  port: number;
  dataDir: string;
  k: number;
  n: number;
  caBundle?: (string | Uint8Array)[];
  /** Every bootstrap of the overlay (this one is added if missing). */
  peers?: BootstrapInfo[];
  /** A ring member to join through (another bootstrap); default: rejoin via known adapters, else a new ring. */
  join?: NodeRef;
  logger?: Logger;
  stabilizeMs?: number;
}

export interface RunningBootstrap {
  server: BootstrapServer;
  info: BootstrapInfo;
  close(): Promise<void>;
}

function ringInit(keys: Uint8Array[], clock: Clock, stabilizeMs?: number) {
  return {
    verifyRef: admittedRef(keys, () => clock.wallNow()),
    store: { validators: { '': bootstrapWrittenValidator(keys, defaultValidator()) } },
    installHandler: false,
    stabilizeMs: stabilizeMs ?? 1000,
    rpcTimeoutMs: 2000,
  };
}

function keyPair(id: Identity) {
  return { privateKey: id.signingKey, publicKey: id.publicSigningKey };
}

export async function startBootstrapDaemon(o: BootstrapDaemonOptions): Promise<RunningBootstrap> {
  const log = o.logger ?? silentLogger;
  const clock = new SystemClock();
  const random = new CryptoRandom();
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const identity = Identity.loadOrCreate(join(o.dataDir, 'node'));
  const registry = new Registry(join(o.dataDir, 'registry.sqlite'));
  const self = BootstrapServer.selfAdmission(identity, registry, random, clock.wallNow());
  const keys = () => peers.map((p) => p.key);
  let peers: BootstrapInfo[] = o.peers ?? [];
  const admitted = admittedRef({ [Symbol.iterator]: () => keys()[Symbol.iterator]() }, () => clock.wallNow());
  const endpoint = await TlsRpcEndpoint.listen({
    host: o.host,
    port: o.port,
    keyPair: keyPair(identity),
    self: { id: self.id, admission: self.admission },
    // Adapters not yet admitted present their key-derived id; ring members their admission.
    verifyRef: (ref) => admitted(ref) || defaultVerifyRef(ref),
    clock,
    logger: log,
  });
  const info: BootstrapInfo = { addr: endpoint.self.addr, key: identity.bundle.sig };
  if (!peers.some((p) => Buffer.from(p.key).equals(Buffer.from(info.key)))) peers = [...peers, info];
  const ring = ChordNode.create({ endpoint, clock, random, logger: log }, ringInit(keys(), clock, o.stabilizeMs));
  const contacts = o.join
    ? [o.join]
    : [
        ...(await peerContacts(endpoint, peers, info, log)),
        ...BootstrapServer.rejoinContacts(registry, keys(), clock.wallNow()),
      ];
  // Nothing answers requests until the join is done (the server installs the handler): a node not yet on
  // the ring would answer lookups as a ring of its own, and entries the ring still has for our id lead here.
  await joinAsBootstrap(ring, info.key, contacts, log, {
    waitMs: o.join ? 0 : foundingRank(peers, info.key) * FOUNDING_STEP_MS,
    refresh: () => peerContacts(endpoint, peers, info, log, true),
  });
  const server = new BootstrapServer(
    { identity, endpoint, ring, registry, clock, random, logger: log },
    { k: o.k, n: o.n, bootstraps: peers, caBundle: o.caBundle },
  );
  if (registry.count() > 0)
    server.republishAll().then(
      (n) => log.info({ users: n }, 'republished registered users'),
      (e) => log.warn({ err: (e as Error).message }, 'republish failed'),
    );
  return {
    server,
    info,
    async close() {
      await leaveRing(ring, log);
      await endpoint.close();
      registry.close();
    },
  };
}

/** Hand records and neighbours over before going (Chord leave), so the ring keeps no entry for us. */
async function leaveRing(ring: ChordNode, log: Logger): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<void>((r) => {
    timer = setTimeout(r, 3000);
  });
  await Promise.race([ring.leave(), bound]).catch((e) =>
    log.warn({ err: (e as Error).message }, 'could not leave the ring gracefully'),
  );
  clearTimeout(timer);
  ring.stop();
}

/**
 * Ring members known to the other bootstraps of the overlay: a peer answers
 * ADMIT with its own admitted ref and its successors (the admission it issues
 * us is not used: our ring id comes from our own registry).
 */
async function peerContacts(
  endpoint: TlsRpcEndpoint,
  peers: BootstrapInfo[],
  self: BootstrapInfo,
  log: Logger,
  quiet = false,
): Promise<NodeRef[]> {
  const out: NodeRef[] = [];
  for (const p of peers) {
    if (Buffer.from(p.key).equals(Buffer.from(self.key))) continue;
    try {
      const m = await requestAdmission(endpoint, p);
      for (const c of m.ring) out.push({ id: c.id, addr: c.addr, key: c.key, admission: c.admission });
    } catch (e) {
      if (!quiet) log.warn({ peer: p.addr, err: (e as Error).message }, 'peer bootstrap unreachable');
    }
  }
  return out;
}

/**
 * Who founds the ring when no member answers: the bootstraps in order of their keys. The first founds at
 * once; the one of rank r first waits r x FOUNDING_STEP_MS for a ring to join (asking its peer bootstraps
 * every FOUNDING_POLL_MS). So bootstraps started at the same moment form one ring, and with the first
 * one down the next founds after one step.
 */
const FOUNDING_STEP_MS = 5000;
const FOUNDING_POLL_MS = 500;

function foundingRank(peers: readonly BootstrapInfo[], self: Uint8Array): number {
  const hex = Buffer.from(self).toString('hex');
  return peers.filter((p) => Buffer.from(p.key).toString('hex') < hex).length;
}

/** Read a TLS peer's Ed25519 node key without trusting it yet (for `--bootstrap host:port` without a key). */
export function fetchPeerKey(host: string, port: number, timeoutMs = 3000): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new OverlayError('RPC_UNREACHABLE', `no TLS answer from ${host}:${port}`));
    }, timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      const cert = s.getPeerX509Certificate();
      s.destroy();
      const k = cert ? rawEd25519PublicKey(cert.publicKey) : undefined;
      if (k?.ok) resolve(k.value);
      else reject(new OverlayError('IDENTITY_BAD_KEY', 'peer does not present an Ed25519 node key'));
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(new OverlayError('RPC_UNREACHABLE', `${host}:${port}: ${e.message}`));
    });
  });
}

/**
 * Join through any of the contacts; a ring still settling after other joins may need a second try.
 * 'listed': the ring already holds a node with our id (ChordNode.join refuses with BAD_CONFIG).
 */
async function joinRing(ring: ChordNode, contacts: NodeRef[], log: Logger, attempts = 8): Promise<'joined' | 'listed'> {
  let last: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    for (const c of contacts) {
      try {
        await ring.join({ id: c.id, addr: c.addr, key: c.key, admission: c.admission });
        return 'joined';
      } catch (e) {
        if (isOverlayError(e, 'BAD_CONFIG')) return 'listed';
        last = e;
      }
    }
    log.debug({ attempt, err: (last as Error)?.message }, 'join failed; retrying');
    await new Promise((r) => setTimeout(r, 250 * (attempt + 1)));
  }
  throw last;
}

/**
 * A bootstrap keeps its ring id across restarts (its address is fixed, so entries for it stay right).
 * After a stop it left the ring and joins again. After a crash the ring may still list it, and a join
 * lookup cannot confirm a place the ring believes taken: then it takes up its place again (ChordNode.rejoin:
 * the members it knows in ring order after it, and the records of its range pulled from its successor), and
 * Chord's stabilize and notify correct the rest. Which case
 * holds is asked of the members themselves (their predecessor and successors). With no member answering,
 * it starts a new ring.
 */
async function joinAsBootstrap(
  ring: ChordNode,
  key: Uint8Array,
  contacts: NodeRef[],
  log: Logger,
  founding: { waitMs: number; refresh: () => Promise<NodeRef[]> },
): Promise<void> {
  const seen = new Map<string, NodeRef>();
  const learn = (r: NodeRef | null) => {
    if (r && !bytesEqual(r.key, key) && !seen.has(r.id)) seen.set(r.id, r);
  };
  const probe = contacts.filter((c) => !bytesEqual(c.key, key)).slice(0, 16);
  const replies = await Promise.all(probe.map((c) => ring.neighbors(c, false).catch(() => null)));
  const live = probe.filter((_, i) => replies[i] !== null);
  let listed = contacts.some((c) => c.id === ring.id);
  for (const nb of replies) {
    if (!nb) continue;
    if (nb.pred?.id === ring.id || nb.succs.some((s) => s.id === ring.id)) listed = true;
    learn(nb.pred);
    for (const s of nb.succs) learn(s);
  }
  for (const c of live) learn(c);
  const takeUpPlace = async (why: string) => {
    const pulled = await ring.rejoin([...seen.values()]);
    log.info(
      { successor: ring.successor.addr, records: ring.store.size, pulled },
      `${why}; taking up its place among the members it knows`,
    );
  };
  if (listed && seen.size > 0) return takeUpPlace('the ring still lists this bootstrap');
  if (live.length > 0) {
    try {
      if ((await joinRing(ring, live, log, 2)) === 'joined') return;
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'could not join through the live members');
    }
    return takeUpPlace('no join through the live members');
  }
  // No member answers: wait for a bootstrap earlier in founding order to start the ring, then join it.
  if (founding.waitMs > 0) {
    const until = Date.now() + founding.waitMs;
    log.info({ waitMs: founding.waitMs }, 'no ring member answers; waiting for a bootstrap earlier in founding order');
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, FOUNDING_POLL_MS));
      const more = await founding.refresh();
      if (more.length > 0)
        return joinAsBootstrap(ring, key, more, log, { ...founding, waitMs: Math.max(0, until - Date.now()) });
    }
  }
  // With no member to join through, this bootstrap starts a new ring (join(undefined) also starts maintenance).
  log.info('no ring member answers; starting a new ring');
  await ring.join(undefined);
}

export interface AdapterDaemonOptions {
  sipHost: string;
  sipPort: number;
  rpcHost?: string;
  rpcPort?: number;
  bootstrap: BootstrapInfo;
  /** Keys and trust store persist here; in memory when absent. */
  dataDir?: string;
  mode?: SecurityMode;
  rebuild?: RebuildMode;
  timeoutMs?: number;
  logger?: Logger;
  stabilizeMs?: number;
  onEvent?: (e: FlowEvent) => void;
  /** Reuse of users verified through the ring (ms, default 30 s; 0: every call fetches key pieces again). */
  cacheMs?: number;
}

/** Default reuse of a verified user: long enough for call bursts, short enough that a move is seen soon. */
export const DEFAULT_VERIFIED_CACHE_MS = 30_000;

export interface RunningAdapter {
  adapter: Adapter;
  node: AdapterNode;
  sipAddr: string;
  close(): Promise<void>;
}

export async function startAdapterDaemon(o: AdapterDaemonOptions): Promise<RunningAdapter> {
  const log = o.logger ?? silentLogger;
  const clock = new SystemClock();
  const random = new CryptoRandom();
  if (o.dataDir) mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const identity = o.dataDir ? Identity.loadOrCreate(join(o.dataDir, 'node')) : Identity.generate();
  const host = o.rpcHost ?? o.sipHost;
  // ADMIT over a short-lived link: the bootstrap assigns our ring id.
  const temp = await TlsRpcEndpoint.listen({ host, port: 0, keyPair: keyPair(identity), clock });
  let admittedMsg: Awaited<ReturnType<typeof requestAdmission>>;
  try {
    admittedMsg = await requestAdmission(temp, o.bootstrap);
  } finally {
    await temp.close();
  }
  const keys = admittedMsg.bootstraps.map((b) => b.key);
  const endpoint = await TlsRpcEndpoint.listen({
    host,
    port: o.rpcPort ?? 0,
    keyPair: keyPair(identity),
    self: { id: admittedMsg.nodeId, admission: admittedMsg.admission },
    verifyRef: admittedRef(keys, () => clock.wallNow()),
    clock,
    logger: log,
  });
  const ring = ChordNode.create({ endpoint, clock, random, logger: log }, ringInit(keys, clock, o.stabilizeMs));
  let transport: TransportStack;
  try {
    transport = await TransportStack.listen({ host: o.sipHost, port: o.sipPort }, { logger: log });
  } catch (e) {
    await endpoint.close();
    throw new OverlayError('BAD_CONFIG', `cannot listen for SIP on ${o.sipHost}:${o.sipPort}: ${(e as Error).message}`);
  }
  const element = new SipElement({ transport, clock, logger: log });
  const trust = new TrustStore(o.dataDir ? join(o.dataDir, 'trust.sqlite') : ':memory:');
  const bindings = o.dataDir ? openBindings(join(o.dataDir, 'bindings.sqlite'), log) : undefined;
  const registrar = new Registrar({ clock, store: bindings?.store }, { minExpires: 10 });
  if (bindings) {
    const r = registrar.restore(bindings.rows);
    for (const s of r.skipped) log.warn({ aor: s.aor, reason: s.reason }, 'stored phone binding skipped');
    if (r.restored + r.expired > 0) log.info({ restored: r.restored, expired: r.expired }, 'phone bindings restored');
  }
  const node = new AdapterNode(
    {
      endpoint,
      ring,
      trust,
      phones: new RegisteredPhones(registrar),
      keys: o.dataDir ? new FileUserKeys(join(o.dataDir, 'users')) : undefined,
      clock,
      random,
      logger: log,
    },
    {
      admitted: admittedMsg,
      bootstrap: o.bootstrap,
      sipAddr: element.hostport,
      mode: o.mode,
      rebuild: o.rebuild,
      timeoutMs: o.timeoutMs,
      onEvent: o.onEvent,
      cacheMs: o.cacheMs ?? DEFAULT_VERIFIED_CACHE_MS,
    },
  );
  // A node key keeps its ring id across admissions: after a restart the ring may still list us, so take up our place.
  if ((await joinRing(ring, admittedMsg.ring, log)) === 'listed') await ring.rejoin(admittedMsg.ring);
  const adapter = new Adapter({ node, element, clock, logger: log });
  if (bindings) {
    const r = await adapter.restoreUsers();
    if (r.users + r.failed > 0) log.info(r, 'users of restored phone bindings registered with the bootstrap again');
  }
  const sweeper = setInterval(() => registrar.sweep(), 30_000);
  sweeper.unref();
  return {
    adapter,
    node,
    sipAddr: element.hostport,
    async close() {
      clearInterval(sweeper);
      await leaveRing(ring, log);
      await element.close();
      await endpoint.close();
      trust.close();
      bindings?.store.close();
    },
  };
}

/** The phone bindings kept under the data directory; damaged rows or files are reported, never fatal. */
function openBindings(path: string, log: Logger): { store: SqliteBindingStore; rows: StoredBinding[] } {
  const store = new SqliteBindingStore(path);
  const loaded = store.load();
  if (loaded.movedAside) log.warn({ path, movedTo: loaded.movedAside }, 'bindings file unreadable; starting empty');
  for (const b of loaded.bad) log.warn({ aor: b.aor, reason: b.reason }, 'stored phone binding skipped');
  return { store, rows: loaded.rows };
}
