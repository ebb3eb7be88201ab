import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import { keyPosition } from '../../../src/dht/store/ring-id.ts';
import { ChordTestnet } from '../../../src/sim/chord-testnet.ts';

const CHORD = { replicas: 3, stabilizeMs: 500 };

/**
 * A node that crashed and comes back at its id before the ring noticed:
 * a join lookup cannot confirm a place the ring still lists, so it takes
 * the place up again with ChordNode.rejoin, and must come back with the
 * records of its range (its store was lost with the process).
 */
describe('Chord rejoin after a crash', () => {
  for (const seed of [3, 8]) {
    it(`comes back with the records it owns or first-replicates, and the ring links it again (seed ${seed})`, async () => {
      const t = await ChordTestnet.create(
        12,
        { seed, chord: CHORD, network: { latencyMs: 1, jitterMs: 0, resolutionMs: 1 } },
        10_000,
      );
      const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
      const publisher = t.liveNodes()[0];
      const put = await t.settle(Promise.all(keys.map((k) => publisher.put(k, `v-${k}`, 3_600_000))));
      assert.deepEqual(
        put.filter((r) => !r.ok),
        [],
      );

      // Crash: the process and its store are gone; the ring still lists it.
      const victim = t.liveNodes()[5];
      const ref = victim.self;
      victim.stop();
      await victim.endpoint.close();
      const back = ChordNode.create({ endpoint: t.net.endpoint(ref), clock: t.clock, random: t.random.fork() }, CHORD);
      t.nodes.set(ref.id, back);
      assert.equal(back.store.size, 0);

      const members = t.liveNodes().filter((n) => n.id !== ref.id);
      // The members a restarted node knows come in no particular order.
      const known = [...members].reverse().map((n) => n.self);
      assert.equal(await t.settle(back.rejoin(known)), true);
      const ownerOrFirst = keys.filter((k) => {
        const o = t.ownerOf(keyPosition(k));
        return o === ref.id || t.successorOf(o) === ref.id;
      });
      assert.ok(ownerOrFirst.length > 0, 'the victim holds part of the keys');
      assert.deepEqual(
        ownerOrFirst.filter((k) => !back.store.has(k)),
        [],
        'pulled from its successor at once',
      );
      assert.equal(back.successor.id, t.successorOf(ref.id));

      await t.run(5000);
      const pred = members.find((n) => t.successorOf(n.id) === ref.id);
      assert.equal(pred?.successor.id, ref.id, 'its predecessor links it again');
      assert.equal(back.pred?.id, pred?.id);
      const got = await t.settle(t.liveNodes()[2].getMany(keys));
      assert.deepEqual(
        keys.filter((k) => !got.get(k)?.ok),
        [],
      );
    });
  }

  it('with no known member answering, it keeps the list it was given and reports that nothing was pulled', async () => {
    const t = await ChordTestnet.create(
      4,
      { seed: 4, chord: CHORD, network: { latencyMs: 1, jitterMs: 0, resolutionMs: 1 } },
      10_000,
    );
    const [a, b, c, d] = t.liveNodes();
    for (const n of [b, c, d]) t.kill(n.id);
    a.stop();
    await a.endpoint.close();
    const back = ChordNode.create({ endpoint: t.net.endpoint(a.self), clock: t.clock, random: t.random.fork() }, CHORD);
    assert.equal(await t.settle(back.rejoin([b.self, c.self, d.self])), false);
    back.stop();
  });
});
