import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Registry } from '../../src/secp2psip/registry.ts';
import { SeededRandom } from '../../src/util/random.ts';

const dir = mkdtempSync(join(tmpdir(), 'secp2psip-registry-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const rnd = new SeededRandom(1);
const keys = () => ({ signKey: rnd.bytes(32), sealKey: rnd.bytes(32) });

describe('Registry', () => {
  it('binds a free name, confirms the same key, refuses another key', () => {
    const r = new Registry(':memory:');
    const bob = keys();
    const first = r.claim('bob', bob, 1000);
    assert.equal(first.outcome, 'created');
    assert.equal(first.entry.registeredAt, 1000);
    const again = r.claim('bob', bob, 2000);
    assert.equal(again.outcome, 'same');
    assert.equal(again.entry.registeredAt, 1000);
    assert.equal(again.entry.updatedAt, 2000);
    const other = r.claim('bob', keys(), 3000);
    assert.equal(other.outcome, 'taken');
    assert.deepEqual(r.get('bob')?.signKey, bob.signKey);
    // Same signing key but a different sealing key is also another key.
    assert.equal(r.claim('bob', { signKey: bob.signKey, sealKey: rnd.bytes(32) }, 4000).outcome, 'taken');
    r.close();
  });

  it('survives a restart: users, location records and node ids', () => {
    const path = join(dir, 'registry.sqlite');
    const r1 = new Registry(path);
    const alice = keys();
    r1.claim('alice', alice, 10, 'ff00');
    r1.setLocation('alice', new Uint8Array([1, 2, 3]));
    r1.setPieces('alice', [new Uint8Array([4, 1]), new Uint8Array([5, 2])]);
    const nodeKey = rnd.bytes(32);
    const id = r1.nodeId(nodeKey, 10, () => 'aa'.repeat(20));
    r1.close();
    const r2 = new Registry(path);
    const e = r2.get('alice');
    assert.ok(e);
    assert.deepEqual(e.signKey, alice.signKey);
    assert.deepEqual(e.location, new Uint8Array([1, 2, 3]));
    assert.equal(e.certFingerprint, 'ff00');
    assert.deepEqual(e.pieces, [new Uint8Array([4, 1]), new Uint8Array([5, 2])]);
    assert.equal(r2.claim('alice', keys(), 20).outcome, 'taken');
    assert.equal(
      r2.nodeId(nodeKey, 20, () => 'bb'.repeat(20)),
      id,
    );
    assert.equal(r2.count(), 1);
    r2.close();
  });

  it('never hands two node keys the same id', () => {
    const r = new Registry(':memory:');
    const ids = ['11'.repeat(20), '11'.repeat(20), '22'.repeat(20)];
    let i = 0;
    const a = r.nodeId(rnd.bytes(32), 0, () => ids[i++]);
    const b = r.nodeId(rnd.bytes(32), 0, () => ids[i++]);
    assert.notEqual(a, b);
    assert.equal(b, '22'.repeat(20));
    r.close();
  });
});
