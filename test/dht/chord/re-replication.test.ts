import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import { inHalfOpen, keyPosition } from '../../../src/dht/store/ring-id.ts';
import { ChordTestnet } from '../../../src/sim/chord-testnet.ts';

/**
 * Re-replication while a neighbour is suspected (record-upkeep.ts, replicate). When a range's owner crashes,
 * the next node owns it, but it only replicated its own range until the failure was settled and the ring
 * relinked: seconds of RPC timeouts, or one long period at rest, during which the next crash nearby could take
 * the last copy (sim chord --liars 0.1, seeds 65 and 85).
 */
describe('Chord re-replication with a suspected neighbour', () => {
  it('sends every record it holds past a suspected successor once its predecessor is suspected and silent', async () => {
    const t = await ChordTestnet.create(10, { seed: 3, chord: { replicas: 3 } }, 20_000);
    const publisher = t.liveNodes()[0];
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
    const res = await t.settle(Promise.all(keys.map((k) => publisher.put(k, `v-${k}`, 3_600_000))));
    assert.ok(res.every((r) => r.ok));
    await t.run(5000);
    // n, its predecessor p and p's range (pp, p]: held by p, n and n's successor s1, not by s2 or s3.
    const n = t.liveNodes()[4];
    const p = n.pred as NonNullable<ChordNode['pred']>;
    const pp = (t.nodes.get(p.id) as ChordNode).pred as NonNullable<ChordNode['pred']>;
    const [s1, s2, s3] = n.successors.map((r) => t.nodes.get(r.id) as ChordNode);
    const inP = keys.filter((k) => inHalfOpen(keyPosition(k), pp.id, p.id));
    assert.ok(inP.length > 0, 'some key in the predecessor range');
    assert.ok(inP.every((k) => n.store.has(k) && !s2.store.has(k) && !s3.store.has(k)));
    // One slow answer of a predecessor that called lately sends nothing beyond our range.
    n.failures.missed(p.id);
    n.predHeardAt = t.clock.now();
    await t.settle(n.maintenance.records.replicate());
    assert.ok(inP.every((k) => !s2.store.has(k)));
    // p and s1 stop answering (as after a crash, before the failure detector has settled either); p has not
    // called for three periods.
    n.failures.missed(s1.id);
    n.predHeardAt = t.clock.now() - 3000;
    await t.settle(n.maintenance.records.replicate());
    for (const k of inP) {
      assert.ok(s2.store.has(k), `${k} on the second successor`);
      assert.ok(s3.store.has(k), `${k} on the third successor, past the suspected first`);
    }
  });
});
