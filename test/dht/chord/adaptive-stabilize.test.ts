import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import { ChordTestnet } from '../../../src/sim/chord-testnet.ts';

const BASE = 500;
const CAP = 4000;
const ADAPTIVE = { replicas: 3, stabilizeMs: BASE, maxStabilizeMs: CAP };
const FIXED = { replicas: 3, stabilizeMs: BASE, maxStabilizeMs: BASE };
const NET = { latencyMs: 2, jitterMs: 1, resolutionMs: 1, timeoutMs: 1000 };

function wrongSuccessors(t: ChordTestnet): number {
  const ids = t.liveIds();
  return ids.filter((id, i) => (t.nodes.get(id) as ChordNode).successor.id !== ids[(i + 1) % ids.length]).length;
}

/** Simulated ms until every successor is right (checked every 500 ms), or -1 after `limitMs`. */
async function msToOneRing(t: ChordTestnet, limitMs: number): Promise<number> {
  for (let ms = 0; ms <= limitMs; ms += 500) {
    if (wrongSuccessors(t) === 0) return ms;
    await t.run(500);
  }
  return -1;
}

const requests = (t: ChordTestnet) => t.liveNodes().reduce((s, n) => s + n.endpoint.stats.requestsSent, 0);
const periods = (t: ChordTestnet) => new Set(t.liveNodes().map((n) => n.maintenance.periodMs));

describe('adaptive stabilization (simulated time)', () => {
  it('a ring at rest backs off to the longest period and sends a fraction of the fixed-period traffic', async () => {
    const fixed = await ChordTestnet.create(24, { seed: 3, chord: FIXED, network: NET }, 30_000);
    const adaptive = await ChordTestnet.create(24, { seed: 3, chord: ADAPTIVE, network: NET }, 30_000);
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
    const t = await ChordTestnet.create(24, { seed: 5, chord: ADAPTIVE, network: NET }, 30_000);
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
    const t = await ChordTestnet.create(24, { seed: 9, chord: ADAPTIVE, network: NET }, 30_000);
    assert.deepEqual([...periods(t)], [CAP]);
    const joined = await t.settle(t.addNode());
    assert.ok(joined);
    const ms = await msToOneRing(t, 3 * CAP);
    assert.ok(ms >= 0, `${wrongSuccessors(t)} wrong successors left`);
  });

  it('two halves cut for 60 s merge into one ring within 30 s of the heal', async () => {
    const t = await ChordTestnet.create(24, { seed: 1, chord: ADAPTIVE, network: NET }, 30_000);
    const nodes = t.liveNodes();
    const a = nodes.filter((_, i) => i % 2 === 0);
    const b = nodes.filter((_, i) => i % 2 === 1);
    t.net.partition(
      a.map((n) => n.self.addr),
      b.map((n) => n.self.addr),
    );
    await t.run(60_000);
    const side = new Set(a.map((n) => n.id));
    assert.ok(a.every((n) => side.has(n.successor.id)) && b.every((n) => !side.has(n.successor.id)));
    t.net.heal();
    const ms = await msToOneRing(t, 30_000);
    assert.ok(ms >= 0, `one ring within 30 s of the heal (${wrongSuccessors(t)} wrong successors left)`);
  });
});
