/**
 * RandomWalkCache (seed 003 section 4.4) on its own, with scripted peers:
 * requests are batched, one fill per length at a time, each walk handed out
 * once, expired tokens never handed out, failing peers marked inactive.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WalkEnd } from '../../../src/dht/whanau/messages.ts';
import { RandomWalkCache } from '../../../src/dht/whanau/random-walk-cache.ts';
import type { NodeRef } from '../../../src/rpc/types.ts';
import { SimClock } from '../../../src/util/clock.ts';
import { SeededRandom } from '../../../src/util/random.ts';

const TTL = 60_000;

function peerRef(i: number): NodeRef {
  return { id: i.toString(16).padStart(40, '0'), addr: `peer-${i}`, key: new Uint8Array(32).fill(i) };
}

/** Peers that answer walk requests after `delayMs` of simulated time; each walk end carries a unique token. */
function world(peerCount: number, o: { failing?: Set<string>; delayMs?: number } = {}) {
  const clock = new SimClock();
  const peers = Array.from({ length: peerCount }, (_, i) => peerRef(i + 1));
  const inactive = new Set<string>();
  const calls: { peer: string; length: number; count: number }[] = [];
  let serial = 0;
  const end = (ref: NodeRef): WalkEnd => {
    const token = new Uint8Array(8);
    new DataView(token.buffer).setUint32(0, ++serial);
    return { ref, token };
  };
  const cache = new RandomWalkCache(
    {
      clock,
      random: new SeededRandom(12),
      selfEnd: () => end(peerRef(0)),
      activePeers: () => peers.filter((p) => !inactive.has(p.addr)),
      requestWalks: (peer, length, count) => {
        calls.push({ peer: peer.addr, length, count });
        return new Promise((resolve, reject) =>
          clock.setTimer(o.delayMs ?? 1, () =>
            o.failing?.has(peer.addr)
              ? reject(new Error('refused'))
              : resolve(Array.from({ length: count }, () => end(peer))),
          ),
        );
      },
      markInactive: (peer) => inactive.add(peer.addr),
    },
    { tokenTtlMs: TTL, refill: 8 },
  );
  /** Run simulated time until the promise settles. */
  async function run<T>(p: Promise<T>): Promise<T> {
    let done = false;
    p.finally(() => {
      done = true;
    }).catch(() => {});
    for (let i = 0; i < 1000 && !done; i++) {
      await new Promise((r) => setImmediate(r));
      const next = clock.nextAt();
      if (next !== undefined) clock.runUntil(next);
    }
    return p;
  }
  const tokens = (ends: WalkEnd[]) => ends.map((e) => new DataView(e.token.buffer).getUint32(0));
  return { clock, cache, calls, inactive, run, tokens };
}

const asked = (calls: { count: number }[]) => calls.reduce((s, c) => s + c.count, 0);

describe('RandomWalkCache', () => {
  it('asks peers for walks one step shorter, in one batch with the refill, then serves from the cache', async () => {
    const w = world(4);
    const first = await w.run(w.cache.take(5, 3));
    assert.equal(first.length, 5);
    assert.equal(asked(w.calls), 5 + 8, 'what was asked for plus the refill');
    assert.ok(
      w.calls.every((c) => c.length === 2),
      'a walk of length 3 is a step to a peer plus its walk of length 2',
    );
    assert.ok(w.calls.length <= 4, 'one request per peer chosen');
    assert.equal(w.cache.size(3), 8);
    const n = w.calls.length;
    const second = await w.run(w.cache.take(8, 3));
    assert.equal(second.length, 8);
    assert.equal(w.calls.length, n, 'served from the cache');
    assert.equal(w.cache.walksRequested, 13);
    const all = w.tokens([...first, ...second]);
    assert.equal(new Set(all).size, all.length, 'every walk handed out once');
  });

  it('keeps one cache per length', async () => {
    const w = world(3);
    await w.run(w.cache.take(1, 3));
    assert.equal(w.cache.size(3), 8);
    await w.run(w.cache.take(1, 2));
    assert.ok(
      w.calls.some((c) => c.length === 1),
      'a fill for length 2 asks for length-1 walks',
    );
    assert.equal(w.cache.size(3), 8, 'length 3 untouched');
    assert.equal(w.cache.size(2), 8);
  });

  it('concurrent takes of one length share one fill', async () => {
    const w = world(5, { delayMs: 50 });
    const [a, b] = await w.run(Promise.all([w.cache.take(4, 4), w.cache.take(4, 4)]));
    assert.equal(a.length + b.length, 8);
    assert.equal(asked(w.calls), 4 + 8, 'the second take waited for the first fill');
    const all = w.tokens([...a, ...b]);
    assert.equal(new Set(all).size, 8);
  });

  it("passes a peer's request through: exactly what was asked, each on its own, the cache left as it was", async () => {
    const w = world(5, { delayMs: 50 });
    const [a, b] = await w.run(Promise.all([w.cache.take(4, 3, 0), w.cache.take(3, 3, 0)]));
    assert.equal(a.length, 4);
    assert.equal(b.length, 3);
    assert.equal(asked(w.calls), 7, 'no refill');
    assert.equal(w.clock.now(), 50, 'the second did not wait behind the first');
    assert.equal(w.cache.size(3), 0);
    // Walks already cached (from this node's own refill) are served first.
    await w.run(w.cache.take(1, 2));
    const n = asked(w.calls);
    assert.equal((await w.run(w.cache.take(5, 2, 0))).length, 5);
    assert.equal(asked(w.calls), n, 'served from the cache');
  });

  it('never hands out a walk whose token may have expired', async () => {
    const w = world(2);
    await w.run(w.cache.take(1, 2));
    assert.equal(w.cache.size(2), 8);
    w.clock.advance(TTL / 2 + 1);
    const before = w.calls.length;
    const got = await w.run(w.cache.take(3, 2));
    assert.equal(got.length, 3);
    assert.ok(w.calls.length > before, 'stale walks were dropped and new ones asked for');
    const fresh = Math.min(...w.tokens(got));
    assert.ok(fresh > 9, `only walks fetched after the wait (token ${fresh})`);
  });

  it('a failing peer is marked inactive and the walks come from the others', async () => {
    const w = world(3, { failing: new Set(['peer-2']) });
    const got = await w.run(w.cache.take(20, 2));
    assert.equal(got.length, 20);
    assert.ok(w.inactive.has('peer-2'));
    assert.ok(got.every((e) => e.ref.addr !== 'peer-2'));
  });

  it('with no peers: length 0 is this node, longer walks come back empty without spinning', async () => {
    const w = world(0);
    const self = await w.cache.take(3, 0);
    assert.deepEqual(
      self.map((e) => e.ref.addr),
      ['peer-0', 'peer-0', 'peer-0'],
    );
    assert.deepEqual(await w.run(w.cache.take(3, 2)), []);
    assert.equal(w.calls.length, 0);
  });

  it('chooses peers uniformly for each walk', async () => {
    const w = world(4);
    await w.run(w.cache.take(4000, 1));
    const per = new Map<string, number>();
    for (const c of w.calls) per.set(c.peer, (per.get(c.peer) ?? 0) + c.count);
    assert.equal(per.size, 4);
    for (const [peer, n] of per) assert.ok(n > 850 && n < 1160, `${peer}: ${n} of ${asked(w.calls)}`);
  });
});
