import { decode as cborDecode, encode as cborEncode } from 'cborg';
import type { SimClock } from '../util/clock.ts';
import { OverlayError } from '../util/errors.ts';
import type { Random } from '../util/random.ts';
import {
  type Caller,
  emptyStats,
  type NodeRef,
  type Payload,
  type RequestHandler,
  type RequestOptions,
  type RpcEndpoint,
  type RpcStats,
} from './types.ts';
import { bytesEqual } from '../util/bytes.ts';

/**
 * In-memory network of RpcEndpoints on a simulated clock. Every message costs
 * one heap event (delivery, then response); nothing runs between events, so
 * thousands of nodes fit in one process. Dead nodes swallow requests (the
 * caller times out), partitions cut groups of addrs apart, and each message
 * can be lost with a fixed probability.
 */
export interface MemoryNetworkInit {
  /** One-way latency in ms (default 5). */
  latencyMs?: number;
  /** Uniform extra one-way delay in [0, jitterMs) (default 0). */
  jitterMs?: number;
  /** Probability that any one message (request or response) is lost (default 0). */
  lossRate?: number;
  /** Default request timeout in ms (default 1000). */
  timeoutMs?: number;
  /**
   * How payloads cross the wire: 'clone' (structuredClone, the default),
   * 'cbor' (encode and decode, counting bytes) or 'none' (same object; the
   * receiver must not mutate it; cheapest at 10,000+ nodes).
   */
  copy?: 'clone' | 'cbor' | 'none';
  /** Delivery times are rounded up to this many ms so events batch (default 1; 0 = exact). */
  resolutionMs?: number;
}

export interface NetworkStats {
  messages: number;
  lost: number;
  bytes: number;
}

export class MemoryNetwork {
  readonly clock: SimClock;
  private readonly random: Random;
  private readonly nodes = new Map<string, MemoryEndpoint>();
  private readonly dead = new Set<string>();
  private readonly groupOf = new Map<string, number>();
  private readonly linkLatency = new Map<string, number>();
  private readonly buckets = new Map<number, (() => void)[]>();
  readonly latencyMs: number;
  readonly jitterMs: number;
  lossRate: number;
  readonly timeoutMs: number;
  readonly copy: 'clone' | 'cbor' | 'none';
  private readonly resolution: number;
  readonly stats: NetworkStats = { messages: 0, lost: 0, bytes: 0 };

  constructor(components: { clock: SimClock; random: Random }, init: MemoryNetworkInit = {}) {
    this.clock = components.clock;
    this.random = components.random;
    this.latencyMs = init.latencyMs ?? 5;
    this.jitterMs = init.jitterMs ?? 0;
    this.lossRate = init.lossRate ?? 0;
    this.timeoutMs = init.timeoutMs ?? 1000;
    this.copy = init.copy ?? 'clone';
    this.resolution = init.resolutionMs ?? 1;
  }

  /** The endpoint for `ref` (created on first use; a revived addr gets a fresh handler slot). */
  endpoint(ref: NodeRef): RpcEndpoint {
    const existing = this.nodes.get(ref.addr);
    if (existing && !existing.closed) {
      if (!bytesEqual(existing.self.key, ref.key))
        throw new OverlayError('BAD_CONFIG', `address ${ref.addr} already used by another key`);
      return existing;
    }
    const ep = new MemoryEndpoint(this, ref);
    this.nodes.set(ref.addr, ep);
    this.dead.delete(ref.addr);
    return ep;
  }

  /** Take a node off the network: requests to it and from it vanish (callers time out). */
  kill(addr: string): void {
    this.dead.add(addr);
  }

  revive(addr: string): void {
    this.dead.delete(addr);
  }

  isAlive(addr: string): boolean {
    const ep = this.nodes.get(addr);
    return ep !== undefined && !ep.closed && !this.dead.has(addr);
  }

  /** Addrs in different groups cannot reach each other; addrs in no group reach everyone. */
  partition(...groups: Iterable<string>[]): void {
    this.groupOf.clear();
    groups.forEach((g, i) => {
      for (const a of g) this.groupOf.set(a, i);
    });
  }

  heal(): void {
    this.groupOf.clear();
  }

  /** Fixed one-way latency for the link between a and b (both directions), replacing latency + jitter. */
  setLinkLatency(a: string, b: string, ms: number): void {
    this.linkLatency.set(linkKey(a, b), ms);
  }

  /**
   * @internal Run `fn` after `delayMs`. With a resolution, all messages due
   * in one window share a single clock timer and run in the order they were
   * sent: one heap operation per window instead of one per message.
   */
  schedule(delayMs: number, fn: () => void): void {
    if (this.resolution <= 0) {
      this.clock.setTimer(delayMs, fn);
      return;
    }
    const now = this.clock.now();
    const at = Math.ceil((now + Math.max(0, delayMs)) / this.resolution) * this.resolution;
    let bucket = this.buckets.get(at);
    if (!bucket) {
      const b: (() => void)[] = [];
      bucket = b;
      this.buckets.set(at, b);
      this.clock.setTimer(at - now, () => {
        this.buckets.delete(at);
        for (const f of b) f();
      });
    }
    bucket.push(fn);
  }

  /**
   * Drive the simulation: run timers up to now + ms, letting promise
   * continuations settle after each distinct event time so async code sees
   * the clock it expects.
   */
  async run(ms: number): Promise<void> {
    const end = this.clock.now() + ms;
    for (;;) {
      const next = this.clock.nextAt();
      if (next === undefined || next > end) break;
      this.clock.runUntil(Math.min(end, this.windowEnd(next)));
      await drain();
    }
    this.clock.runUntil(end);
    await drain();
  }

  /** Events inside one resolution window run as a batch before promise continuations settle. */
  private windowEnd(t: number): number {
    return this.resolution > 0 ? Math.ceil(t / this.resolution) * this.resolution : t;
  }

  /** Run until `done()` is true (checked after each event time) or `limitMs` of simulated time pass. */
  async runUntil(done: () => boolean, limitMs: number): Promise<boolean> {
    const end = this.clock.now() + limitMs;
    await drain();
    while (!done()) {
      const next = this.clock.nextAt();
      if (next === undefined || next > end) return done();
      this.clock.runUntil(Math.min(end, this.windowEnd(next)));
      await drain();
    }
    return true;
  }

  /** Run the simulation until `p` settles and return its outcome; throws if `limitMs` of simulated time pass first. */
  async settle<T>(p: Promise<T>, limitMs: number): Promise<T> {
    let done = false;
    const out = p.finally(() => {
      done = true;
    });
    out.catch(() => {});
    await this.runUntil(() => done, limitMs);
    if (!done) throw new Error(`did not settle within ${limitMs} ms of simulated time`);
    return out;
  }

  /** @internal */
  canReach(from: string, to: string): boolean {
    if (this.dead.has(from) || this.dead.has(to)) return false;
    const gf = this.groupOf.get(from);
    const gt = this.groupOf.get(to);
    return gf === undefined || gt === undefined || gf === gt;
  }

  /** @internal */
  target(addr: string): MemoryEndpoint | undefined {
    const ep = this.nodes.get(addr);
    return ep && !ep.closed ? ep : undefined;
  }

  /** @internal One-way delay for a message, or -1 if it is lost. */
  delay(from: string, to: string): number {
    this.stats.messages++;
    if (this.lossRate > 0 && this.random.next() < this.lossRate) {
      this.stats.lost++;
      return -1;
    }
    const fixed = this.linkLatency.size > 0 ? this.linkLatency.get(linkKey(from, to)) : undefined;
    let d = fixed ?? this.latencyMs + (this.jitterMs > 0 ? this.random.next() * this.jitterMs : 0);
    if (this.resolution > 0) d = Math.ceil(d / this.resolution) * this.resolution;
    return d;
  }

  /** @internal */
  transfer(p: Payload): Payload {
    if (this.copy === 'none') return p;
    if (this.copy === 'clone') return structuredClone(p);
    const bytes = cborEncode(p);
    this.stats.bytes += bytes.length;
    return cborDecode(bytes);
  }
}

class MemoryEndpoint implements RpcEndpoint {
  readonly self: NodeRef;
  readonly stats: RpcStats = emptyStats();
  closed = false;
  private handler: RequestHandler | undefined;
  private readonly net: MemoryNetwork;

  /** What handlers learn about requests from this endpoint (the transport proves the key). */
  readonly asCaller: Caller;

  constructor(net: MemoryNetwork, self: NodeRef) {
    this.net = net;
    this.self = { ...self };
    this.asCaller = Object.freeze({ key: this.self.key, ref: this.self, addr: this.self.addr });
  }

  onRequest(handler: RequestHandler): void {
    this.handler = handler;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handler = undefined;
  }

  request(to: NodeRef, method: string, payload: Payload, opts?: RequestOptions): Promise<Payload> {
    this.stats.requestsSent++;
    if (this.closed) return Promise.reject(new OverlayError('RPC_UNREACHABLE', 'endpoint closed'));
    return new Promise<Payload>((resolve, reject) => {
      new Call(this.net, this, to, method, opts?.timeoutMs ?? this.net.timeoutMs, resolve, reject).send(payload);
    });
  }

  /** Run the handler; a synchronous result is answered at once, a promise when it settles. */
  deliver(call: Call, method: string, body: Payload, caller: Caller): void {
    this.stats.requestsReceived++;
    const h = this.handler;
    if (!h) {
      this.stats.refused++;
      call.reply(false, 'no handler');
      return;
    }
    let result: Payload | Promise<Payload>;
    try {
      result = h(method, body, caller);
    } catch (e) {
      this.stats.refused++;
      call.reply(false, (e as Error).message);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (v) => {
          // A closed endpoint sends nothing back: the caller's timeout runs out.
          if (!this.closed) call.reply(true, v);
        },
        (e: unknown) => {
          this.stats.refused++;
          call.reply(false, (e as Error)?.message ?? String(e));
        },
      );
    } else call.reply(true, result);
  }
}

/** One request in flight: request leg, handler, response leg, or a timeout. */
class Call {
  private done = false;
  private readonly sentAt: number;
  private body: Payload;
  private ok = false;
  private value: unknown;
  /** A reply is on its way back and lands before the deadline. */
  private answered = false;

  constructor(
    private readonly net: MemoryNetwork,
    private readonly from: MemoryEndpoint,
    private readonly to: NodeRef,
    private readonly method: string,
    private readonly timeoutMs: number,
    private readonly resolve: (p: Payload) => void,
    private readonly reject: (e: Error) => void,
  ) {
    this.sentAt = net.clock.now();
  }

  send(payload: Payload): void {
    const net = this.net;
    // The caller's deadline is set when the request leaves, so a slow or hung
    // handler still times out; a leg that cannot be delivered just sends nothing.
    this.armTimeout();
    const d1 = net.canReach(this.from.self.addr, this.to.addr) ? net.delay(this.from.self.addr, this.to.addr) : -1;
    if (d1 < 0) return;
    this.body = net.transfer(payload);
    net.schedule(d1, () => this.arrive(d1));
  }

  private arrive(d1: number): void {
    const net = this.net;
    // A killed or cut-off node is silent (the caller times out); an addr
    // with no open endpoint refuses at once, like a closed port.
    if (!net.canReach(this.from.self.addr, this.to.addr)) return;
    const target = net.target(this.to.addr);
    if (!target) {
      this.fail('RPC_UNREACHABLE', `no node at ${this.to.addr}`, net.clock.now() + d1);
      return;
    }
    if (!bytesEqual(target.self.key, this.to.key)) {
      this.fail('RPC_PEER_KEY_MISMATCH', this.to.addr, net.clock.now() + d1);
      return;
    }
    target.deliver(this, this.method, this.body, this.from.asCaller);
  }

  /** The handler's outcome travels back over the response leg. */
  reply(ok: boolean, value: unknown): void {
    const net = this.net;
    const d2 = net.canReach(this.to.addr, this.from.self.addr) ? net.delay(this.to.addr, this.from.self.addr) : -1;
    // A lost or late answer: the timeout set in send() fires.
    if (d2 < 0 || net.clock.now() + d2 > this.sentAt + this.timeoutMs) return;
    this.ok = ok;
    this.value = ok ? net.transfer(value) : value;
    this.answered = true;
    net.schedule(d2, () => this.settle());
  }

  private settle(): void {
    if (this.done) return;
    this.done = true;
    if (this.ok) {
      this.from.stats.responsesOk++;
      this.resolve(this.value);
    } else this.reject(new OverlayError('RPC_REFUSED', String(this.value)));
  }

  private armTimeout(): void {
    this.net.schedule(this.sentAt + this.timeoutMs - this.net.clock.now(), () => {
      if (this.done || this.answered) return;
      this.done = true;
      this.from.stats.timeouts++;
      this.reject(new OverlayError('RPC_TIMEOUT', `${this.method} to ${this.to.addr}`));
    });
  }

  private fail(code: 'RPC_UNREACHABLE' | 'RPC_PEER_KEY_MISMATCH', reason: string, at: number): void {
    this.net.schedule(at - this.net.clock.now(), () => {
      if (this.done) return;
      this.done = true;
      this.reject(new OverlayError(code, reason));
    });
  }
}

function linkKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

/** Let every queued promise continuation run. */
function drain(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
