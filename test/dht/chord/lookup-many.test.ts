import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import { keyPosition } from '../../../src/dht/store/ring-id.ts';
import { makeLiar } from '../../../src/sim/chord-liar.ts';
import { ChordTestnet, testnetOracle } from '../../../src/sim/chord-testnet.ts';

const N = 200;
const user = (u: number) => [`u${u}`, ...Array.from({ length: 10 }, (_, i) => `u${u}.${i + 1}`)];

describe(`batched lookups on a ${N}-node ring`, () => {
  let t: ChordTestnet;
  before(async () => {
    t = await ChordTestnet.create(N, { seed: 7, chord: { replicas: 3 } }, 20_000);
  });

  it('lookupMany finds every true owner with fewer queries than separate lookups', async () => {
    const asker = t.liveNodes()[11];
    for (const confirm of [true, false]) {
      let batched = 0;
      let single = 0;
      for (let u = 0; u < 10; u++) {
        const keys = user(u);
        const many = await t.settle(asker.lookupMany(keys.map(keyPosition), confirm));
        const one = await t.settle(Promise.all(keys.map((k) => asker.lookupId(keyPosition(k), confirm))));
        keys.forEach((k, i) => {
          const m = many[i];
          const o = one[i];
          assert.ok(m.ok && o.ok, k);
          assert.equal(m.owner.id, t.ownerOf(keyPosition(k)), k);
          assert.equal(o.owner.id, m.owner.id, k);
          batched += m.queries;
          single += o.queries;
        });
      }
      assert.ok(batched < single, `confirm ${confirm}: batched ${batched} queries, single ${single}`);
    }
  });

  it('with 10% lying nodes a batch reaches the true owner or fails, never a wrong one', async () => {
    const oracle = testnetOracle(t, t.random.fork());
    const ids = t.liveIds();
    const liars = new Set<string>();
    for (let i = 0; i < ids.length; i += 10) {
      const n = t.nodes.get(ids[(i + 3) % ids.length]) as ChordNode;
      makeLiar(n, oracle, t.random.fork());
      liars.add(n.id);
    }
    const askers = t.liveNodes().filter((n) => !liars.has(n.id));
    let right = 0;
    let total = 0;
    for (let u = 0; u < 40; u++) {
      const keys = user(100 + u);
      const res = await t.settle(askers[u % askers.length].lookupMany(keys.map(keyPosition)));
      keys.forEach((k, i) => {
        const r = res[i];
        total++;
        if (!r.ok) return;
        assert.equal(r.owner.id, t.ownerOf(keyPosition(k)), `wrong owner for ${k}`);
        right++;
      });
    }
    assert.ok(right >= 0.95 * total, `right ${right}/${total}`);
  });
});
