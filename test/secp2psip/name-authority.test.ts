import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorityFor, type BootstrapRef, isAuthority } from '../../src/secp2psip/name-authority.ts';
import { SeededRandom } from '../../src/util/random.ts';

const rnd = new SeededRandom(3);
const set: BootstrapRef[] = Array.from({ length: 4 }, (_, i) => ({ addr: `b${i}`, key: rnd.bytes(32) }));
const names = Array.from({ length: 2000 }, (_, i) => `user${i}`);

describe('name authority', () => {
  it('every member of the set agrees, whatever order it lists the set in', () => {
    const shuffled = [...set].reverse();
    for (const n of names) assert.equal(authorityFor(n, set).addr, authorityFor(n, shuffled).addr);
  });

  it('exactly one bootstrap is the authority for each name', () => {
    for (const n of names.slice(0, 200)) {
      const owners = set.filter((b) => isAuthority(n, b.key, set));
      assert.equal(owners.length, 1);
    }
  });

  it('spreads names over the set and moves only names the new member wins', () => {
    const counts = new Map<string, number>();
    for (const n of names) {
      const a = authorityFor(n, set).addr;
      counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    assert.equal(counts.size, 4);
    for (const c of counts.values()) assert.ok(c > 350 && c < 650, `share ${c}`);
    const bigger = [...set, { addr: 'b4', key: rnd.bytes(32) }];
    let moved = 0;
    for (const n of names) {
      const before = authorityFor(n, set).addr;
      const now = authorityFor(n, bigger).addr;
      if (before !== now) {
        moved++;
        assert.equal(now, 'b4');
      }
    }
    assert.ok(moved > 250 && moved < 600, `moved ${moved}`);
  });

  it('has no authority without bootstraps', () => {
    assert.throws(() => authorityFor('x', []));
  });
});
