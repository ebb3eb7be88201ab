import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChordNode } from '../../src/dht/chord/chord-node.ts';
import { lookupUser } from '../../src/secp2psip/key-lookup.ts';
import { pieceKey } from '../../src/secp2psip/ring-records.ts';
import { holderIds } from '../support/ring.ts';
import { SecTestnet } from './testnet.ts';

const K = 6;
const N = 10;

/**
 * Users registered while adapters join back to back: every record the
 * bootstrap wrote must end on its owner and the owner's two successors, and
 * every user must be found with all n pieces. (A put refused while no owner
 * could be confirmed, or stored just before a joined node was linked in
 * front of its owner, used to leave keys missing for good.)
 */
describe('SecP2PSIP records while the ring grows', () => {
  it('keeps every user reachable with all pieces after registrations during 10 joins', async () => {
    const t = await SecTestnet.create(3, { k: K, n: N, seed: 2 });
    try {
      const names = ['alice', 'bob', 'carol'];
      await t.settle(Promise.all(names.map((n, i) => t.adapters[i].ensureUser(n))));
      const joins = (async () => {
        for (let i = 0; i < 10; i++) await t.addAdapter();
      })();
      const regs = (async () => {
        for (let i = 0; i < 20; i++) {
          const name = `u${i}`;
          await t.adapters[i % 3].ensureUser(name);
          names.push(name);
        }
      })();
      await t.settle(Promise.all([joins, regs]), 300_000);
      await t.run(3000);

      const rings = [...t.bootstraps.map((b) => b.ring), ...t.adapters.map((a) => a.ring)];
      const ids = rings.map((r) => r.id).sort();
      const byId = new Map<string, ChordNode>(rings.map((r) => [r.id, r]));
      const short: string[] = [];
      for (const name of names)
        for (const key of [name, ...Array.from({ length: N }, (_, i) => pieceKey(name, i + 1))]) {
          const held = holderIds(ids, key, 3).filter((id) => byId.get(id)?.store.has(key)).length;
          if (held < 3) short.push(`${key}:${held}`);
        }
      assert.deepEqual(short, [], 'records not on their owner and its two successors');

      const reader = t.adapters[t.adapters.length - 1];
      for (const name of names) {
        const u = await t.settle(lookupUser(reader.verified.lookup, name, true));
        assert.equal(u.pieces.missing.length + u.pieces.bad.length, 0, name);
      }
    } finally {
      t.close();
    }
  });
});
