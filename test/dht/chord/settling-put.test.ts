import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import type { PutResult } from '../../../src/dht/chord/chord-types.ts';
import { putSettled } from '../../../src/dht/chord/settling-put.ts';
import { ChordTestnet } from '../../../src/sim/chord-testnet.ts';

/** A node whose first `failures` puts find no confirmable owner (as while nodes join next to the key). */
function unsettled(node: ChordNode, failures: number): { tries: number[] } {
  const seen = { tries: [] as number[] };
  const put = node.put.bind(node);
  node.put = (key, value, ttlMs): Promise<PutResult> => {
    seen.tries.push(node.clock.now());
    if (seen.tries.length <= failures)
      return Promise.resolve({ ok: false, error: 'DHT_LOOKUP_FAILED', reason: 'owner not confirmed' });
    return put(key, value, ttlMs);
  };
  return seen;
}

describe('a put that keeps trying while the ring settles', () => {
  it('tries again every 250 ms until the owner is found, and the record is stored', async () => {
    const t = await ChordTestnet.create(8, { seed: 5, chord: { stabilizeMs: 1000 } }, 10_000);
    const node = t.liveNodes()[2];
    const seen = unsettled(node, 3);
    const r = await t.settle(putSettled(node, 'k', 'v', 60_000, 3000));
    assert.ok(r.ok, r.ok ? '' : r.reason);
    assert.equal(seen.tries.length, 4);
    for (let i = 1; i < 4; i++) assert.equal(seen.tries[i] - seen.tries[i - 1], 250);
    const got = await t.settle(t.liveNodes()[5].get('k'));
    assert.ok(got.ok && got.value === 'v');
  });

  it("gives up within the caller's budget, and never after three stabilize periods", async () => {
    const t = await ChordTestnet.create(8, { seed: 6, chord: { stabilizeMs: 200 } }, 10_000);
    const node = t.liveNodes()[1];
    unsettled(node, 1000);
    let started = t.clock.now();
    let r = await t.settle(putSettled(node, 'k', 'v', 60_000, 3000));
    assert.ok(!r.ok && r.error === 'DHT_LOOKUP_FAILED');
    assert.ok(t.clock.now() - started <= 600, `three 200 ms periods, took ${t.clock.now() - started} ms`);
    started = t.clock.now();
    r = await t.settle(putSettled(node, 'k', 'v', 60_000, 300));
    assert.ok(!r.ok);
    assert.ok(t.clock.now() - started <= 300, `budget 300 ms, took ${t.clock.now() - started} ms`);
  });

  it('does not try again a put the owner refused', async () => {
    const t = await ChordTestnet.create(4, { seed: 7 }, 10_000);
    const node = t.liveNodes()[0];
    const seen = unsettled(node, 0);
    const r = await t.settle(putSettled(node, '', 'v', 60_000, 3000));
    assert.ok(!r.ok && r.error === 'DHT_RECORD_INVALID');
    assert.equal(seen.tries.length, 1);
  });
});
