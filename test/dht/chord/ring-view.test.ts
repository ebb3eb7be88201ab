import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RingView } from '../../../src/dht/chord/routing-table.ts';
import { keyPosition, sha1Id } from '../../../src/dht/store/ring-id.ts';
import type { NodeRef } from '../../../src/rpc/types.ts';
import { ChordTestnet } from '../../../src/sim/chord-testnet.ts';

function ref(hexStart: string): NodeRef {
  const key = new Uint8Array(32).fill(hexStart.charCodeAt(0));
  return { id: hexStart.padEnd(40, '0'), addr: `m-${hexStart}`, key };
}

describe('RingView', () => {
  it('names the first known nodes at or after a position, wrapping, itself included', () => {
    const self = ref('5');
    const v = new RingView(self, 8);
    v.activate();
    v.learn([ref('2'), ref('8'), ref('b'), ref('e')]);
    assert.deepEqual(
      v.holders('6'.padEnd(40, '0'), 3).map((r) => r.id[0]),
      ['8', 'b', 'e'],
    );
    assert.deepEqual(
      v.holders('c'.padEnd(40, '0'), 3).map((r) => r.id[0]),
      ['e', '2', '5'],
    );
    assert.deepEqual(
      v.holders('5'.padEnd(40, '0'), 2).map((r) => r.id[0]),
      ['5', '8'],
    );
    v.forget('8'.padEnd(40, '0'));
    assert.equal(v.holders('6'.padEnd(40, '0'), 1)[0].id[0], 'b');
  });

  it('does not learn a muted node again until unmuted', () => {
    const v = new RingView(ref('0'), 8);
    v.activate([ref('4'), ref('8')]);
    v.mute('4'.padEnd(40, '0'));
    v.learn([ref('4')]);
    assert.equal(v.holders('1'.padEnd(40, '0'), 1)[0].id[0], '8');
    v.unmute();
    v.learn([ref('4')]);
    assert.equal(v.holders('1'.padEnd(40, '0'), 1)[0].id[0], '4');
  });

  it('keeps at most max nodes, forgetting the oldest heard of; a size of 0 keeps none', () => {
    const v = new RingView(ref('0'), 2);
    v.activate([ref('1'), ref('2')]);
    v.learn([ref('1')]); // heard again: now the newest
    v.learn([ref('3')]);
    assert.equal(v.size, 2);
    assert.deepEqual(
      v.holders('0'.padEnd(40, '0'), 4).map((r) => r.id[0]),
      ['0', '1', '3'],
    );
    const none = new RingView(ref('0'), 0);
    none.activate([ref('1')]);
    none.learn([ref('1')]);
    assert.equal(none.size, 0);
    assert.deepEqual(
      none.holders('9'.padEnd(40, '0'), 2).map((r) => r.id[0]),
      ['0'],
    );
  });

  it('keeps few nodes until first asked, then names the true owner of most keys after lookups on a 60-node ring', async () => {
    const t = await ChordTestnet.create(60, { seed: 4, chord: { replicas: 3 } }, 10_000);
    const sizes = t.liveNodes().map((n) => n.view.size);
    assert.ok(Math.max(...sizes) <= 32 && Math.min(...sizes) > 0, `never-asked views hold ${Math.max(...sizes)}`);
    const asker = t.liveNodes()[9];
    const keys = Array.from({ length: 40 }, (_, i) => `user${i}`);
    asker.guessHolders(keyPosition(keys[0]), 3);
    assert.ok(asker.view.size >= asker.fingers.distinct().length, 'started from the routing table');
    await t.settle(asker.lookupMany(keys.map(keyPosition), false));
    const right = keys.filter((k) => asker.view.holders(keyPosition(k), 1)[0].id === t.ownerOf(keyPosition(k)));
    assert.ok(asker.view.size > 30, `view holds ${asker.view.size}`);
    assert.ok(right.length >= 36, `${right.length} of 40 owners named`);
    // Only bound refs enter it: every id is SHA-1 of its key.
    for (const r of asker.view.holders(keyPosition(keys[0]), 60)) assert.equal(r.id, sha1Id(r.key));
  });
});
