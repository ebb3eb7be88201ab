import type { NodeRef, Payload, RequestOptions } from '../../rpc/types.ts';
import type { Clock, Timer } from '../../util/clock.ts';
import { OverlayError } from '../../util/errors.ts';
import { type Logger, silentLogger } from '../../util/log.ts';
import type { Random } from '../../util/random.ts';
import { type KV, Responses, type WalkEnd } from './messages.ts';
import type { WhanauParams } from './params.ts';
import { type LookupOutcome, lookupProcedure, type TryOutcome, tryProcedure } from './procedures.ts';
import { QueryTokens } from './query-token.ts';
import { RandomWalkCache } from './random-walk-cache.ts';
import type { SetupRun } from './state.ts';
import { runSetup } from './setup.ts';

/** Application rule for self-certifying records (seed 003 section 4.5): accept (key, value) at this time? */
export interface KeyValueChecker {
  check(key: string, value: Uint8Array, nowMs: number): boolean;
}

/** What the node needs from the transport: an RpcEndpoint fits. */
export interface WhanauTransport {
  request(to: NodeRef, method: string, payload: Payload, opts?: RequestOptions): Promise<Payload>;
}

export interface WhanauNodeComponents {
  clock: Clock;
  random: Random;
  transport: WhanauTransport;
  logger?: Logger;
}

export interface WhanauNodeInit {
  self: NodeRef;
  params: Readonly<WhanauParams>;
  checker: KeyValueChecker;
  /** Raw public keys allowed to call control methods (section 4.3). */
  adminKeys?: Uint8Array[];
}

interface Peer {
  ref: NodeRef;
  /** Confirmed that the peer added us too (it answered a peer-only call). */
  mutual: boolean;
  inactiveUntil: number;
}

export interface WhanauNodeStats {
  refused: number;
  malformedDropped: number;
  invalidRecordsDropped: number;
  lookups: number;
  setups: number;
}

export const keyHex = (k: Uint8Array): string => Buffer.from(k).toString('hex');

/** How long SETUP waits for social peers with smaller keys to ping first (see refreshPeers). */
const REFRESH_GRACE_MS = 1000;

/**
 * One Whanau DHT node (seed 003 chapter 4, Appendix A). Protocol core: no
 * sockets and no timers of its own; clock, random source and transport are
 * injected. Incoming calls arrive through `dispatch.ts`, which enforces the
 * public / peer / control split; this class holds WhanauState and runs SETUP
 * and LOOKUP.
 */
export class WhanauNode {
  readonly self: NodeRef;
  readonly params: Readonly<WhanauParams>;
  readonly checker: KeyValueChecker;
  readonly clock: Clock;
  readonly random: Random;
  readonly tokens: QueryTokens;
  readonly walks: RandomWalkCache;
  readonly log: Logger;
  readonly stats: WhanauNodeStats = {
    refused: 0,
    malformedDropped: 0,
    invalidRecordsDropped: 0,
    lookups: 0,
    setups: 0,
  };
  private readonly transport: WhanauTransport;
  private readonly peers = new Map<string, Peer>();
  private readonly admins: Set<string>;
  /** stored-records(u): what this node publishes. */
  readonly records = new Map<string, Uint8Array>();
  current: SetupRun | undefined;
  published: SetupRun | undefined;
  private readonly waiters = new Set<() => void>();
  private periodic: Timer | undefined;
  /** Set by dispatch.ts so calls to this node itself skip the transport. */
  localHandler: ((method: string, payload: Payload) => Promise<Payload>) | undefined;

  constructor(components: WhanauNodeComponents, init: WhanauNodeInit) {
    this.self = init.self;
    this.params = init.params;
    this.checker = init.checker;
    this.clock = components.clock;
    this.random = components.random;
    this.transport = components.transport;
    this.log = (components.logger ?? silentLogger).child({ component: 'whanau', node: init.self.id.slice(0, 8) });
    this.admins = new Set((init.adminKeys ?? []).map(keyHex));
    this.tokens = new QueryTokens(this.clock, this.random, this.params.tokenTtlMs);
    this.walks = new RandomWalkCache(
      {
        clock: this.clock,
        random: this.random,
        selfEnd: () => ({ ref: this.self, token: this.tokens.mint() }),
        activePeers: () => this.activePeers(),
        requestWalks: async (peer, length, count) => {
          const r = Responses.walk(await this.call(peer, 'whanau.walk', { length, count }));
          if (!r.ok) throw new OverlayError('DHT_BAD_REQUEST', r.error);
          this.peerAnswered(peer);
          return r.value;
        },
        markInactive: (peer) => this.markInactive(peer),
      },
      { tokenTtlMs: this.params.tokenTtlMs },
    );
  }

  // ---- social peers and admins (section 4.3) ----

  addPeer(ref: NodeRef): void {
    const k = keyHex(ref.key);
    if (k === keyHex(this.self.key)) return;
    this.peers.set(k, { ref, mutual: this.peers.get(k)?.mutual ?? false, inactiveUntil: 0 });
  }

  removePeer(key: Uint8Array): boolean {
    return this.peers.delete(keyHex(key));
  }

  isPeerKey(key: Uint8Array): boolean {
    return this.peers.has(keyHex(key));
  }

  isAdminKey(key: Uint8Array): boolean {
    return this.admins.has(keyHex(key));
  }

  peerList(): { ref: NodeRef; mutual: boolean; active: boolean }[] {
    const now = this.clock.now();
    return [...this.peers.values()].map((p) => ({ ref: p.ref, mutual: p.mutual, active: p.inactiveUntil <= now }));
  }

  /** A peer that called us on a peer-only method has added us, and is up: the link is mutual. */
  peerCalled(key: Uint8Array): void {
    const p = this.peers.get(keyHex(key));
    if (!p) return;
    p.inactiveUntil = 0; // it just reached us: whatever failed before, it is up now
    if (p.mutual) return;
    p.mutual = true;
    this.notify();
  }

  peerAnswered(ref: NodeRef): void {
    const p = this.peers.get(keyHex(ref.key));
    if (p) p.mutual = true;
  }

  markInactive(ref: NodeRef): void {
    const p = this.peers.get(keyHex(ref.key));
    if (p) p.inactiveUntil = this.clock.now() + this.params.inactiveMs;
  }

  /** Walks step only over links both sides added (peers that answered a peer-only call). */
  activePeers(): NodeRef[] {
    const now = this.clock.now();
    const out: NodeRef[] = [];
    for (const p of this.peers.values()) if (p.mutual && p.inactiveUntil <= now) out.push(p.ref);
    return out;
  }

  /**
   * Ping every peer: those that have added us become walkable, the others are
   * left out. Peers with a greater key are pinged first; a peer with a smaller
   * key that pinged us meanwhile is already known mutual and is not pinged
   * back, so two peers refreshing at once open one link between them, not two.
   */
  async refreshPeers(): Promise<void> {
    const me = keyHex(this.self.key);
    const ping = async (p: Peer) => {
      try {
        await this.call(p.ref, 'whanau.ping', {});
        p.mutual = true;
        p.inactiveUntil = 0;
      } catch (e) {
        if (e instanceof OverlayError && e.code === 'RPC_REFUSED') p.mutual = false;
        else p.inactiveUntil = this.clock.now() + this.params.inactiveMs;
      }
    };
    const all = [...this.peers.values()];
    const calledBefore = new Set(all.filter((p) => p.mutual));
    const later = all.filter((p) => keyHex(p.ref.key) < me);
    for (const p of later) if (calledBefore.has(p)) p.mutual = false; // must show again that it added us
    await Promise.all(all.filter((p) => keyHex(p.ref.key) > me).map(ping));
    // They are pinging us now if they refresh too: a moment's grace before we dial them ourselves.
    await this.until(() => later.every((p) => p.mutual), REFRESH_GRACE_MS);
    await Promise.all(later.filter((p) => !p.mutual).map(ping));
  }

  /** Resolves once `done()` holds (checked at every notify()) or after `ms`. */
  private until(done: () => boolean, ms: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        this.waiters.delete(check);
        timer.cancel();
        resolve();
      };
      const timer = this.clock.setTimer(ms, () => {
        this.waiters.delete(check);
        resolve();
      });
      this.waiters.add(check);
    });
  }

  // ---- records ----

  /** Store a record this node publishes; it must pass the checker. */
  publish(kv: KV): void {
    if (!this.checker.check(kv.key, kv.value, this.clock.wallNow()))
      throw new OverlayError('DHT_RECORD_INVALID', `record for ${kv.key} rejected`);
    this.records.set(kv.key, kv.value);
  }

  checked(kv: KV): boolean {
    if (this.checker.check(kv.key, kv.value, this.clock.wallNow())) return true;
    this.stats.invalidRecordsDropped++;
    return false;
  }

  // ---- transport ----

  /** Send a request; `waitsForPhase` calls may be held by the callee up to the skew tolerance (section 4.6). */
  async call(to: NodeRef, method: string, payload: Payload, waitsForPhase = false): Promise<Payload> {
    if (keyHex(to.key) === keyHex(this.self.key) && this.localHandler) return this.localHandler(method, payload);
    return this.callWithin(to, method, payload, this.params.rpcTimeoutMs + (waitsForPhase ? this.params.skewMs : 0));
  }

  callWithin(to: NodeRef, method: string, payload: Payload, timeoutMs: number): Promise<Payload> {
    if (keyHex(to.key) === keyHex(this.self.key) && this.localHandler) return this.localHandler(method, payload);
    return this.transport.request(to, method, payload, { timeoutMs });
  }

  // ---- synchronisation (section 4.6) ----

  /** The epoch of the period that starts next (or now, when exactly on a boundary). */
  nextEpoch(): number {
    return Math.ceil(this.clock.wallNow() / this.params.periodMs);
  }

  runFor(epoch: number): SetupRun | undefined {
    if (this.current?.epoch === epoch) return this.current;
    if (this.published?.epoch === epoch) return this.published;
    return undefined;
  }

  notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Answer from the given setup run once the wanted phase is done. A request
   * for a phase this node has not reached yet (the caller's clock runs ahead)
   * waits up to the skew tolerance; one for an older epoch is refused.
   */
  waitFor<T>(epoch: number, get: (run: SetupRun) => T | undefined): Promise<T> {
    const now = () => {
      const run = this.runFor(epoch);
      return run ? get(run) : undefined;
    };
    const v = now();
    if (v !== undefined) return Promise.resolve(v);
    const newest = Math.max(this.current?.epoch ?? -1, this.published?.epoch ?? -1);
    if (epoch < newest) return Promise.reject(new OverlayError('DHT_NOT_READY', `epoch ${epoch} is over`));
    if (epoch > Math.max(newest, this.nextEpoch()) + 1)
      return Promise.reject(new OverlayError('DHT_NOT_READY', `epoch ${epoch} is too far ahead`));
    return new Promise((resolve, reject) => {
      const check = () => {
        const x = now();
        if (x === undefined) return;
        this.waiters.delete(check);
        timer.cancel();
        resolve(x);
      };
      const timer = this.clock.setTimer(this.params.skewMs, () => {
        this.waiters.delete(check);
        reject(new OverlayError('DHT_NOT_READY', `epoch ${epoch} phase not reached`));
      });
      this.waiters.add(check);
    });
  }

  /** Run SETUP at every multiple of the period p of UTC (section 4.6). */
  startPeriodicSetup(): void {
    this.stopPeriodicSetup();
    // Each firing schedules the epoch after its own: on the boundary itself nextEpoch() is still this one.
    const schedule = (epoch: number) => {
      const delay = Math.max(0, epoch * this.params.periodMs - this.clock.wallNow());
      this.periodic = this.clock.setTimer(delay, () => {
        schedule(epoch + 1);
        this.setup(epoch).catch((e) => this.log.warn({ err: String(e), epoch }, 'setup failed'));
      });
    };
    schedule(this.nextEpoch());
  }

  stopPeriodicSetup(): void {
    this.periodic?.cancel();
    this.periodic = undefined;
  }

  // ---- SETUP (Figure A-1) ----

  async setup(epoch = this.nextEpoch()): Promise<Record<string, unknown>> {
    return runSetup(this, epoch);
  }

  // ---- LOOKUP (Figure A-2) ----

  /** QUERY(f, i, key) as sent to a finger; only a record that passes the checker counts. */
  private async query(f: NodeRef, layer: number, key: string): Promise<Uint8Array | null> {
    try {
      const r = Responses.value(await this.call(f, 'whanau.query', { layer, key }));
      if (!r.ok) {
        this.stats.malformedDropped++;
        return null;
      }
      return r.value && this.checked({ key, value: r.value }) ? r.value : null;
    } catch {
      return null;
    }
  }

  /** TRY(u, key) run here, e.g. for a looking-up node that reached us by a random walk. */
  async tryLocal(key: string): Promise<TryOutcome<Uint8Array>> {
    const run = this.published;
    if (!run) return { value: null, messages: 0 };
    const gen = tryProcedure<string, NodeRef, Uint8Array>(run.view(), key, this.params.tryLimit, this.random);
    let r = gen.next();
    while (!r.done) r = gen.next(await this.query(r.value.node, r.value.layer, key));
    return r.value;
  }

  /** LOOKUP(u, key): resolves with the checked value, or value null ("not found") within the retry limits. */
  async lookup(key: string): Promise<LookupOutcome<Uint8Array>> {
    this.stats.lookups++;
    const run = this.published;
    if (!run) return { value: null, messages: 0, tries: 0 };
    const gen = lookupProcedure<string, NodeRef, WalkEnd, Uint8Array>(run.view(), key, this.params, this.random);
    let r = gen.next();
    while (!r.done) {
      const step = r.value;
      if (step.kind === 'query') r = gen.next(await this.query(step.node, step.layer, key));
      else if (step.kind === 'walk') r = gen.next((await this.walks.take(1, this.params.w))[0] ?? null);
      else {
        let out: TryOutcome<Uint8Array> | null = null;
        try {
          const t = Responses.tried(
            await this.call(step.via.ref, 'whanau.try', { key, token: step.via.token }),
            this.params.tryLimit,
          );
          if (t.ok)
            out = {
              value: t.value.value && this.checked({ key, value: t.value.value }) ? t.value.value : null,
              messages: t.value.messages,
            };
        } catch {
          out = null;
        }
        r = gen.next(out);
      }
    }
    return r.value;
  }

  /** LOOKUP that throws DHT_NOT_FOUND when the retry limits are exhausted. */
  async get(key: string): Promise<Uint8Array> {
    const r = await this.lookup(key);
    if (r.value === null)
      throw new OverlayError('DHT_NOT_FOUND', `${key} after ${r.tries} tries, ${r.messages} messages`);
    return r.value;
  }

  dump(): Record<string, unknown> {
    return {
      self: { id: this.self.id, addr: this.self.addr },
      peers: this.peerList().map((p) => ({ id: p.ref.id, addr: p.ref.addr, mutual: p.mutual, active: p.active })),
      records: [...this.records.keys()],
      current: this.current?.summary() ?? null,
      published: this.published?.summary() ?? null,
      stats: { ...this.stats },
    };
  }
}
