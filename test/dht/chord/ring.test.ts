import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import { MAX_STABILIZE_FACTOR } from '../../../src/dht/chord/chord-types.ts';
import { fingerStart, keyPosition } from '../../../src/dht/store/ring-id.ts';
import { makeLiar } from '../../../src/sim/chord-liar.ts';
import { ChordTestnet, testnetOracle } from '../../../src/sim/chord-testnet.ts';

const N = 1000;
const R = 3;
const KEYS = Array.from({ length: 300 }, (_, i) => `user${i}`);
/**
 * The default tick backs off to MAX_STABILIZE_FACTOR periods at rest, and a node whose neighbours crash
 * without anyone calling it finds out at its next tick: repairs are given that long period on top.
 */
const LONG_MS = MAX_STABILIZE_FACTOR * 1000;

/** Every live node's successor list, predecessor and (optionally) fingers against the true ring. */
function ringErrors(t: ChordTestnet, fingers: boolean) {
  const ids = t.liveIds();
  let succ = 0;
  let list = 0;
  let pred = 0;
  let finger = 0;
  ids.forEach((id, i) => {
    const n = t.nodes.get(id) as ChordNode;
    if (n.successor.id !== ids[(i + 1) % ids.length]) succ++;
    const want = [1, 2, 3].map((k) => ids[(i + k) % ids.length]);
    if (
      n.succs
        .entries()
        .map((r) => r.id)
        .join() !== want.join()
    )
      list++;
    if (n.pred?.id !== ids[(i - 1 + ids.length) % ids.length]) pred++;
    if (fingers) for (let k = 0; k < 160; k++) if (n.fingers.get(k)?.id !== t.ownerOf(fingerStart(id, k))) finger++;
  });
  return { succ, list, pred, finger };
}

/** Keys held by the true owner and the next r-1 live nodes: how many copies each key has there, and anywhere. */
function copies(t: ChordTestnet, key: string) {
  const owner = t.ownerOf(keyPosition(key));
  const holders = [owner, t.successorOf(owner, 1), t.successorOf(owner, 2)];
  const placed = holders.filter((id) => t.nodes.get(id)?.store.has(key)).length;
  const anywhere = t.liveNodes().filter((n) => n.store.has(key)).length;
  return { ownerHas: t.nodes.get(owner)?.store.has(key) === true, placed, anywhere };
}

function honestRandom(t: ChordTestnet, liars: Set<string>): ChordNode {
  const ids = t.liveIds();
  for (;;) {
    const id = ids[t.random.int(ids.length)];
    if (!liars.has(id)) return t.nodes.get(id) as ChordNode;
  }
}

describe(`Chord ring of ${N} nodes in memory`, () => {
  let t: ChordTestnet;
  const liars = new Set<string>();

  before(async () => {
    t = await ChordTestnet.create(N, { seed: 42, chord: { replicas: R } }, 25_000 + LONG_MS);
  });

  it('after stabilization every successor list, predecessor and finger matches the live ring', () => {
    assert.equal(t.size, N);
    assert.deepEqual(ringErrors(t, true), { succ: 0, list: 0, pred: 0, finger: 0 });
  });

  it('lookups from any node find the true owner', async () => {
    const res = await t.settle(
      Promise.all(
        KEYS.map(async (k) => {
          const r = await honestRandom(t, liars).lookup(k);
          return r.ok && r.owner.id === t.ownerOf(keyPosition(k));
        }),
      ),
    );
    assert.equal(res.filter(Boolean).length, KEYS.length);
  });

  it('stores each record on its owner and the next r-1 nodes', async () => {
    const puts = await t.settle(
      Promise.all(KEYS.map((k, i) => honestRandom(t, liars).put(k, `10.0.${i >> 8}.${i & 255}:5060`, 3_600_000))),
    );
    assert.ok(puts.every((p) => p.ok && p.replicas === R));
    for (const k of KEYS) assert.equal(copies(t, k).placed, R, k);
    const got = await t.settle(t.liveNodes()[7].getMany(KEYS.slice(0, 20)));
    for (const [k, g] of got) assert.ok(g.ok && g.value === `10.0.0.${KEYS.indexOf(k)}:5060`);
  });

  it('loses no record when r-1 consecutive nodes fail at once, then re-replicates to r copies', async () => {
    const ids = t.liveIds();
    const victims: string[] = [];
    for (let s = 0; s < 10; s++) {
      const start = (s * 97) % ids.length;
      for (let k = 0; k < R - 1; k++) victims.push(ids[(start + k) % ids.length]);
    }
    for (const v of victims) t.kill(v);
    await t.run(15_000 + LONG_MS);
    assert.deepEqual(ringErrors(t, false), { succ: 0, list: 0, pred: 0, finger: 0 });
    for (const k of KEYS) {
      const c = copies(t, k);
      assert.ok(c.anywhere >= 1, `${k} lost`);
      assert.ok(c.ownerHas && c.placed === R, `${k}: ${JSON.stringify(c)}`);
    }
    const got = await t.settle(t.liveNodes()[3].getMany(KEYS));
    assert.ok([...got.values()].every((g) => g.ok));
  });

  it('hands records to nodes that join and keeps the ring right through joins and failures', async () => {
    const added = await t.settle(Promise.all(Array.from({ length: 50 }, () => t.addNode())), 120_000);
    assert.ok(added.every((n) => n !== null));
    for (let i = 0; i < 30; i++) t.kill(t.liveIds()[t.random.int(t.size)]);
    await t.run(20_000 + LONG_MS);
    assert.deepEqual(ringErrors(t, false), { succ: 0, list: 0, pred: 0, finger: 0 });
    let movedToNew = 0;
    for (const k of KEYS) {
      const c = copies(t, k);
      if (added.some((n) => n?.id === t.ownerOf(keyPosition(k)))) movedToNew++;
      assert.ok(c.ownerHas && c.placed === R, `${k}: ${JSON.stringify(c)}`);
    }
    assert.ok(movedToNew > 0, 'some keys moved to joined nodes');
  });

  it('hands records over on graceful leave before any repair runs', async () => {
    const leavers = t.liveIds().filter((_, i) => i % 50 === 0);
    const owned = KEYS.filter((k) => leavers.includes(t.ownerOf(keyPosition(k))));
    assert.ok(owned.length > 0);
    for (const id of leavers) await t.leave(id);
    for (const k of owned) {
      const next = t.nodes.get(t.ownerOf(keyPosition(k))) as ChordNode;
      assert.ok(next.store.has(k), `${k} handed over`);
      assert.ok(next.pred !== null && !leavers.includes(next.pred.id));
    }
    await t.run(10_000);
    assert.deepEqual(ringErrors(t, false), { succ: 0, list: 0, pred: 0, finger: 0 });
    for (const k of KEYS) assert.equal(copies(t, k).placed, R, k);
  });

  it('with 10% lying nodes, lookups reach the true owner or fail, never a wrong one', async () => {
    const oracle = testnetOracle(t, t.random.fork());
    const ids = t.liveIds();
    for (let i = 0; i < ids.length; i += 10) {
      const n = t.nodes.get(ids[(i + 3) % ids.length]) as ChordNode;
      makeLiar(n, oracle, t.random.fork());
      liars.add(n.id);
    }
    const lookups = Array.from({ length: 600 }, (_, i) => `probe${i}`);
    const res = await t.settle(
      Promise.all(
        lookups.map(async (k) => {
          const r = await honestRandom(t, liars).lookup(k);
          if (!r.ok) return 'failed';
          return r.owner.id === t.ownerOf(keyPosition(k)) ? 'right' : 'wrong';
        }),
      ),
    );
    const wrong = res.filter((x) => x === 'wrong').length;
    const right = res.filter((x) => x === 'right').length;
    assert.equal(wrong, 0);
    assert.ok(right >= 0.95 * lookups.length, `right ${right}/${lookups.length}`);
  });
});
