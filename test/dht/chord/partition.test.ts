import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import { keyPosition } from '../../../src/dht/store/ring-id.ts';
import type { ChordTestnet } from '../../../src/sim/chord-testnet.ts';
import { cutInTwo, msToOneRing, ringOf, sidesApart, wrongSuccessors } from './ring-support.ts';

const CHORD = { replicas: 3, stabilizeMs: 500 };

function ring(n: number, seed: number): Promise<ChordTestnet> {
  return ringOf(n, seed, CHORD, 10_000);
}

/** Puts from both sides during the cut must all be readable from every side after the heal. */
async function putAll(t: ChordTestnet, from: ChordNode, keys: string[]): Promise<void> {
  await t.settle(Promise.all(keys.map((k) => from.put(k, `v-${k}`, 3_600_000))));
}

async function missing(t: ChordTestnet, from: ChordNode, keys: string[]): Promise<string[]> {
  const got = await t.settle(from.getMany(keys));
  return keys.filter((k) => !got.get(k)?.ok);
}

/**
 * Keys whose record is missing from its true owner in the live ring (the
 * first live id at or after the key's position) or from one of the owner's
 * r-1 successors: readable is not enough, the next failures must not lose it.
 */
function misplaced(t: ChordTestnet, keys: string[], r: number): string[] {
  const ids = t.liveIds();
  return keys.filter((k) => {
    const pos = keyPosition(k);
    let o = ids.findIndex((id) => id >= pos);
    if (o < 0) o = 0;
    for (let j = 0; j < Math.min(r, ids.length); j++) {
      const holder = t.nodes.get(ids[(o + j) % ids.length]) as ChordNode;
      if (holder.store.get(k) === undefined) return true;
    }
    return false;
  });
}

describe('Chord ring merges after a partition heals', () => {
  for (const [seed, split] of [
    [1, 'interleaved'],
    [3, 'arc'],
    [5, 'arc'],
  ] as const) {
    it(`records put on each side during the cut reach their owner and r-1 successors within 30 s of the heal (${split} halves, seed ${seed})`, async () => {
      const t = await ring(24, seed);
      // Interleaved: every gap of one side holds one node of the other. Arc: one side's ring spans the
      // other's whole arc, so a single node owned all of it during the cut.
      const { a, b } = cutInTwo(t, (i) => (split === 'arc' ? i < 12 : i % 2 === 0));
      await t.run(60_000);
      const keysA = Array.from({ length: 60 }, (_, i) => `a${i}`);
      const keysB = Array.from({ length: 60 }, (_, i) => `b${i}`);
      await putAll(t, a[0], keysA);
      await putAll(t, b[0], keysB);
      await t.run(2000);
      t.net.heal();
      assert.ok((await msToOneRing(t, 30_000)) >= 0, `one ring (${wrongSuccessors(t)} wrong successors left)`);
      let left: string[] = [];
      for (let ms = 0; ms <= 30_000; ms += 1000) {
        left = misplaced(t, [...keysA, ...keysB], CHORD.replicas);
        if (left.length === 0) break;
        await t.run(1000);
      }
      assert.deepEqual(left, [], 'every record on its owner and r-1 successors');
    });
  }

  for (const seed of [1, 2, 5]) {
    it(`two halves cut for 60 s form one ring within 30 s of the heal, with every record (seed ${seed})`, async () => {
      const t = await ring(24, seed);
      assert.equal(wrongSuccessors(t), 0, 'one ring before the cut');
      const { a, b } = cutInTwo(t, (i) => i % 2 === 0);
      await t.run(60_000);
      // Each side forms its own ring: every successor points inside its side.
      assert.ok(sidesApart(a, b), 'each side stabilized on its own');
      const keysA = Array.from({ length: 40 }, (_, i) => `a${i}`);
      const keysB = Array.from({ length: 40 }, (_, i) => `b${i}`);
      await putAll(t, a[0], keysA);
      await putAll(t, b[0], keysB);
      t.net.heal();
      const ms = await msToOneRing(t, 30_000);
      assert.ok(ms >= 0, `one ring within 30 s of the heal (${wrongSuccessors(t)} wrong successors left)`);
      await t.run(10_000);
      assert.deepEqual(await missing(t, a[1], [...keysA, ...keysB]), []);
      assert.deepEqual(await missing(t, b[1], [...keysA, ...keysB]), []);
    });
  }

  it('a three-way cut heals into one ring', async () => {
    const t = await ring(21, 7);
    const nodes = t.liveNodes();
    const groups = [0, 1, 2].map((g) => nodes.filter((_, i) => i % 3 === g).map((n) => n.self.addr));
    t.net.partition(...groups);
    await t.run(40_000);
    t.net.heal();
    assert.ok((await msToOneRing(t, 30_000)) >= 0, `${wrongSuccessors(t)} wrong successors left`);
  });

  it('a contiguous arc cut off (one side holds a run of the ring) heals', async () => {
    const t = await ring(20, 11);
    cutInTwo(t, (i) => i < 6);
    await t.run(40_000);
    t.net.heal();
    assert.ok((await msToOneRing(t, 30_000)) >= 0, `${wrongSuccessors(t)} wrong successors left`);
  });

  it('a flapping link (cut and healed every few seconds) ends in one ring', async () => {
    const t = await ring(16, 13);
    const nodes = t.liveNodes();
    const a = nodes.filter((_, i) => i % 2 === 0).map((n) => n.self.addr);
    const b = nodes.filter((_, i) => i % 2 === 1).map((n) => n.self.addr);
    for (let i = 0; i < 10; i++) {
      t.net.partition(a, b);
      await t.run(3000 + 700 * (i % 3));
      t.net.heal();
      await t.run(1500);
    }
    assert.ok((await msToOneRing(t, 30_000)) >= 0, `${wrongSuccessors(t)} wrong successors left`);
  });

  it('one node cut off from everyone (a busy or isolated node) comes back into the ring', async () => {
    const t = await ring(12, 17);
    const lone = t.liveNodes()[4];
    t.net.partition(
      [lone.self.addr],
      t
        .liveNodes()
        .filter((n) => n !== lone)
        .map((n) => n.self.addr),
    );
    await t.run(30_000);
    assert.ok(
      t.liveNodes().every((n) => n === lone || n.successor.id !== lone.id),
      'the others closed the ring without it during the cut',
    );
    t.net.heal();
    assert.ok((await msToOneRing(t, 30_000)) >= 0, `${wrongSuccessors(t)} wrong successors left`);
  });

  it('a node that answers late for 4 s (busy) is suspected but never removed, and the ring stays whole', async () => {
    const t = await ring(12, 19);
    const slow = t.liveNodes()[6];
    const others = t.liveNodes().filter((n) => n !== slow);
    // Round trip 1.4 s against a 1 s timeout: every RPC to or from it times out, yet its own calls arrive.
    for (const o of others) t.net.setLinkLatency(slow.self.addr, o.self.addr, 700);
    for (let ms = 0; ms < 4000; ms += 500) {
      await t.run(500);
      assert.equal(wrongSuccessors(t), 0, `ring whole ${ms + 500} ms into the slow spell`);
    }
    for (const o of others) t.net.setLinkLatency(slow.self.addr, o.self.addr, 2);
    await t.run(5000);
    assert.equal(wrongSuccessors(t), 0);
    assert.equal(
      t.liveNodes().reduce((sum, n) => sum + n.counters.removed, 0),
      0,
      'no node removed another',
    );
  });

  it('a node that founded a ring of its own merges into the ring through an anchor it was given', async () => {
    const t = await ring(10, 23);
    const lone = t.createNode();
    await t.settle(lone.join(undefined));
    assert.equal(lone.successor.id, lone.id, 'a ring of one');
    // It never lost anyone, so only the anchor (as an adapter remembers its bootstrap) leads it to the ring.
    lone.remember([t.liveNodes()[3].self]);
    await t.run(30_000);
    const all = [...t.liveNodes(), lone].sort((x, y) => (x.id < y.id ? -1 : 1));
    const wrong = all.filter((n, i) => n.successor.id !== all[(i + 1) % all.length].id).length;
    assert.equal(wrong, 0, 'one ring of eleven');
  });
});
