import { createHash } from 'node:crypto';
import { whanauHandler } from '../../../src/dht/whanau/dispatch.ts';
import { type KeyValueChecker, WhanauNode } from '../../../src/dht/whanau/node.ts';
import type { WhanauParams } from '../../../src/dht/whanau/params.ts';
import type { Caller, NodeRef, Payload, RequestHandler } from '../../../src/rpc/types.ts';
import { SimClock } from '../../../src/util/clock.ts';
import { OverlayError } from '../../../src/util/errors.ts';
import { SeededRandom } from '../../../src/util/random.ts';

/**
 * A minimal in-process network on a SimClock for Whanau node tests: each
 * message takes 1 ms each way, payloads are cloned, the callee sees the
 * caller's key as the transport would have authenticated it, and a handler
 * that throws is a refusal (RPC_REFUSED). Dead addrs never answer (timeout).
 */
export class TestNet {
  readonly clock = new SimClock();
  private readonly handlers = new Map<string, RequestHandler>();
  readonly dead = new Set<string>();
  messages = 0;

  transport(self: NodeRef) {
    return {
      request: (to: NodeRef, method: string, payload: Payload, opts?: { timeoutMs?: number }): Promise<Payload> =>
        new Promise((resolve, reject) => {
          this.messages++;
          const timeout = opts?.timeoutMs ?? 1000;
          let done = false;
          const timer = this.clock.setTimer(timeout, () => {
            if (done) return;
            done = true;
            reject(new OverlayError('RPC_TIMEOUT', method));
          });
          const body = copy(payload);
          this.clock.setTimer(1, () => {
            const h = this.handlers.get(to.addr);
            if (!h || this.dead.has(to.addr)) return;
            const caller: Caller = { key: self.key, ref: self, addr: self.addr };
            Promise.resolve()
              .then(() => h(method, body, caller))
              .then(
                (v) => this.clock.setTimer(1, () => finish(() => resolve(copy(v)))),
                (e: Error) =>
                  this.clock.setTimer(1, () => finish(() => reject(new OverlayError('RPC_REFUSED', e.message)))),
              );
          });
          const finish = (f: () => void) => {
            if (done) return;
            done = true;
            timer.cancel();
            f();
          };
        }),
    };
  }

  listen(addr: string, h: RequestHandler): void {
    this.handlers.set(addr, h);
  }

  /** Advance simulated time event by event, letting promise continuations run, until `p` settles. */
  async until<T>(p: Promise<T>, limitMs = 3_600_000): Promise<T> {
    let settled = false;
    p.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    const end = this.clock.now() + limitMs;
    await drain();
    while (!settled) {
      const next = this.clock.nextAt();
      if (next === undefined || next > end) break;
      this.clock.runUntil(next);
      await drain();
    }
    return p;
  }
}

/** Deep copy of CBOR-able data, so no node ever shares an object with another (cheaper than structuredClone). */
function copy(v: unknown): Payload {
  if (v instanceof Uint8Array) return new Uint8Array(v); // a real copy: Buffer#slice would be a view
  if (Array.isArray(v)) return v.map(copy);
  if (typeof v === 'object' && v !== null) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = copy(x);
    return o;
  }
  return v;
}

function drain(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export function refFor(i: number): NodeRef {
  const key = new Uint8Array(createHash('sha256').update(`node-${i}`).digest());
  return { id: createHash('sha1').update(key).digest('hex'), addr: `node-${i}`, key };
}

/** Records keyed by the SHA-1 of their value: a self-certifying checker that needs no signatures. */
export const hashChecker: KeyValueChecker = {
  check: (key, value) => createHash('sha1').update(value).digest('hex') === key,
};

export function makeNode(
  net: TestNet,
  i: number,
  params: Readonly<WhanauParams>,
  opts: { admin?: Uint8Array[]; checker?: KeyValueChecker } = {},
) {
  const self = refFor(i);
  const node = new WhanauNode(
    { clock: net.clock, random: new SeededRandom(1000 + i), transport: net.transport(self) },
    { self, params, checker: opts.checker ?? hashChecker, adminKeys: opts.admin },
  );
  net.listen(self.addr, whanauHandler(node));
  return node;
}
