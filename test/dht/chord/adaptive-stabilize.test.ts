import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import type { ChordTestnet } from '../../../src/sim/chord-testnet.ts';
import { cutInTwo, msToOneRing, ringOf, sidesApart, wrongSuccessors } from './ring-support.ts';

const BASE = 500;
const CAP = 4000;
const ADAPTIVE = { replicas: 3, stabilizeMs: BASE, maxStabilizeMs: CAP };
const FIXED = { replicas: 3, stabilizeMs: BASE, maxStabilizeMs: BASE };

const requests = (t: ChordTestnet) => t.liveNodes().reduce((s, n) => s + n.endpoint.stats.requestsSent, 0);
const periods = (t: ChordTestnet) => new Set(t.liveNodes().map((n) => n.maintenance.periodMs));

describe('adaptive stabilization (simulated time)', () => {
  it('a ring at rest backs off to the longest period and sends a fraction of the fixed-period traffic', async () => {
    const fixed = await ringOf(24, 3, FIXED, 30_000);
    const adaptive = await ringOf(24, 3, ADAPTIVE, 30_000);
    assert.equal(wrongSuccessors(adaptive), 0);
    assert.deepEqual([...periods(adaptive)], [CAP]);
    assert.deepEqual([...periods(fixed)], [BASE]);
    const f0 = requests(fixed);
    const a0 = requests(adaptive);
    await fixed.run(40_000);
    await adaptive.run(40_000);
    const f = requests(fixed) - f0;
    const a = requests(adaptive) - a0;
    assert.ok(a * 4 < f, `at rest: ${a} requests adaptive against ${f} fixed`);
    assert.equal(wrongSuccessors(adaptive), 0);
  });

  it('failures bring the period back down, the ring heals, and then backs off again', async () => {
    const t = await ringOf(24, 5, ADAPTIVE, 30_000);
    assert.deepEqual([...periods(t)], [CAP]);
    const ids = [...t.liveIds()];
    // Three consecutive nodes crash at once (r = 3: the successor list of the node before them is all dead).
    const pred = t.nodes.get(ids[3]) as ChordNode;
    for (const id of ids.slice(4, 7)) t.kill(id);
    const ms = await msToOneRing(t, 30_000);
    assert.ok(ms >= 0, `one ring within 30 s (${wrongSuccessors(t)} wrong successors left)`);
    assert.equal(pred.successor.id, ids[7]);
    assert.equal(pred.counters.removed >= 1, true);
    await t.run(60_000);
    assert.equal(wrongSuccessors(t), 0);
    assert.deepEqual([...periods(t)], [CAP], 'backed off again once the ring was at rest');
  });

  it('a node joining a ring at rest is linked in as fast as a ring at the short period would take', async () => {
    const t = await ringOf(24, 9, ADAPTIVE, 30_000);
    assert.deepEqual([...periods(t)], [CAP]);
    const joined = await t.settle(t.addNode());
    assert.ok(joined);
    const ms = await msToOneRing(t, 3 * CAP);
    assert.ok(ms >= 0, `${wrongSuccessors(t)} wrong successors left`);
  });

  it('two halves cut for 60 s merge into one ring within 30 s of the heal', async () => {
    const t = await ringOf(24, 1, ADAPTIVE, 30_000);
    const { a, b } = cutInTwo(t, (i) => i % 2 === 0);
    await t.run(60_000);
    assert.ok(sidesApart(a, b), 'each side stabilized on its own');
    t.net.heal();
    const ms = await msToOneRing(t, 30_000);
    assert.ok(ms >= 0, `one ring within 30 s of the heal (${wrongSuccessors(t)} wrong successors left)`);
  });
});
