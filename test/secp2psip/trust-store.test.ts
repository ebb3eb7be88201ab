import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TrustStore } from '../../src/secp2psip/trust-store.ts';
import { SeededRandom } from '../../src/util/random.ts';

const dir = mkdtempSync(join(tmpdir(), 'secp2psip-trust-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const rnd = new SeededRandom(2);
const bundle = (name: string, registeredAt: number) => ({
  name,
  signKey: rnd.bytes(32),
  sealKey: rnd.bytes(32),
  registeredAt,
});

describe('TrustStore', () => {
  it('trusts the first key, matches it later, flags another key', () => {
    const t = new TrustStore(':memory:');
    const bob = bundle('bob', 100);
    assert.equal(t.check(bob), 'new');
    t.accept(bob, 1);
    assert.equal(t.check(bob), 'match');
    const evil = bundle('bob', 100);
    assert.equal(t.check(evil), 'mismatch');
    assert.equal(t.check({ ...bob, sealKey: rnd.bytes(32) }), 'mismatch');
    t.close();
  });

  it('accepts a new key only if the bootstrap shows a later registration of exactly that key', () => {
    const t = new TrustStore(':memory:');
    const old = bundle('bob', 100);
    t.accept(old, 1);
    const fresh = bundle('bob', 200);
    assert.equal(t.reRegistered(fresh, fresh), true);
    assert.equal(t.reRegistered(fresh, { ...fresh, registeredAt: 100 }), false, 'not later');
    assert.equal(t.reRegistered(fresh, old), false, 'bootstrap still has the old key');
    assert.equal(t.reRegistered(fresh, { ...fresh, name: 'carol' }), false);
    t.accept(fresh, 2);
    assert.equal(t.check(fresh), 'match');
    assert.equal(t.check(old), 'mismatch');
    t.close();
  });

  it('persists across restarts', () => {
    const path = join(dir, 'trust.sqlite');
    const a = new TrustStore(path);
    const alice = bundle('alice', 5);
    a.accept(alice, 10);
    a.accept(alice, 20);
    a.close();
    const b = new TrustStore(path);
    assert.equal(b.check(alice), 'match');
    assert.equal(b.get('alice')?.firstSeen, 10);
    assert.equal(b.get('alice')?.lastSeen, 20);
    assert.equal(b.check(bundle('alice', 5)), 'mismatch');
    b.close();
  });
});
