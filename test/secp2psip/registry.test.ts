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
  it('a claim committed without waiting for the disk is decided at once and on disk after sync', async () => {
    const file = join(dir, 'unsynced.sqlite');
    const r = new Registry(file);
    const sync = () =>
      (r as unknown as { db: { pragma(p: string, o: object): unknown } }).db.pragma('synchronous', { simple: true });
    const ann = keys();
    assert.equal(r.claimUnsynced('ann', ann, 1000).outcome, 'created');
    assert.equal(sync(), 2, 'FULL again for every other commit');
    // Decided: the same name for another key is taken before the claim is on disk.
    assert.equal(r.claimUnsynced('ann', keys(), 1001).outcome, 'taken');
    await r.sync();
    await r.sync(); // the log's directory entry once, the log every time
    r.close();
    const again = new Registry(file);
    assert.deepEqual(again.get('ann')?.signKey, ann.signKey);
    again.close();
    // In memory there is no disk to wait for.
    const mem = new Registry(':memory:');
    assert.equal(mem.claimUnsynced('bo', keys(), 1).outcome, 'created');
    await mem.sync();
    mem.close();
  });

  it('marks published without an fsync of their own, and claims stay durable (synchronous=FULL) after them', () => {
    const file = join(dir, 'marks.sqlite');
    const r = new Registry(file);
    const sync = () =>
      (r as unknown as { db: { pragma(p: string, o: object): unknown } }).db.pragma('synchronous', { simple: true });
    assert.equal(sync(), 2, 'FULL');
    const loc = new Uint8Array([1, 2, 3]);
    const pieces = [new Uint8Array([4])];
    assert.equal(r.claim('ann', keys(), 1000, undefined, undefined, { location: loc, pieces }).outcome, 'created');
    assert.equal(r.claim('ben', keys(), 1000, undefined, undefined, { location: loc, pieces }).outcome, 'created');
    assert.equal(r.get('ann')?.state, 'pending');
    r.markPublishedMany([{ name: 'ann', location: loc }], 2000);
    r.markPublished('ben', new Uint8Array([9]), 2000); // another location: ben stays pending
    assert.equal(sync(), 2, 'FULL again for the next claim');
    r.close();
    // Committed: a process that stops (or crashes) after the mark finds it.
    const again = new Registry(file);
    assert.equal(again.get('ann')?.state, undefined);
    assert.equal(again.get('ben')?.state, 'pending');
    again.close();
  });

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

  it("binds new names within a node key's total, kept across a restart; re-registration is never counted", () => {
    const path = join(dir, 'quota.sqlite');
    const node = rnd.bytes(32);
    const other = rnd.bytes(32);
    const policy = { nodeKey: node, maxPerNode: 2 };
    const r1 = new Registry(path);
    const a = keys();
    assert.equal(r1.claim('q1', a, 1, undefined, policy).outcome, 'created');
    assert.equal(r1.claim('q2', keys(), 2, undefined, policy).outcome, 'created');
    const third = r1.claim('q3', keys(), 3, undefined, policy);
    assert.equal(third.outcome, 'refused');
    assert.equal(third.code, 'USER_NAME_QUOTA');
    assert.equal(r1.get('q3'), undefined);
    assert.equal(r1.claim('q3', keys(), 3, undefined, { nodeKey: other, maxPerNode: 2 }).outcome, 'created');
    r1.close();
    const r2 = new Registry(path);
    assert.equal(r2.namesBoundBy(node), 2);
    assert.equal(r2.claim('q4', keys(), 4, undefined, policy).outcome, 'refused');
    // The same keys again: confirmed, not counted, not limited.
    assert.equal(r2.claim('q1', a, 5, undefined, policy).outcome, 'same');
    assert.equal(r2.namesBoundBy(node), 2);
    r2.close();
  });

  it('spends an enrolment token once with the name it binds; unknown, spent, expired, missing and misdirected tokens are refused', () => {
    const r = new Registry(':memory:');
    const node = rnd.bytes(32);
    const need = (invite?: string) => ({ nodeKey: node, requireInvite: true, invite });
    const [t1, t2] = r.createInvites(2, 100, 1000);
    const [expired] = r.createInvites(1, 100, 200);
    const [forAlice] = r.createInvites(1, 100, 1000, 'alice');
    assert.match(t1, /^[A-Za-z0-9_-]{24}$/);
    const refused = (name: string, invite: string | undefined, why: RegExp) => {
      const o = r.claim(name, keys(), 300, undefined, need(invite));
      assert.equal(o.outcome, 'refused', name);
      assert.equal(o.code, 'USER_INVITE_INVALID');
      assert.match(o.reason, why);
      assert.equal(r.get(name), undefined);
    };
    refused('u0', undefined, /needs an enrolment token/);
    refused('u0', 'A'.repeat(24), /unknown token/);
    refused('u0', expired, /expired/);
    refused('bob', forAlice, /another name/);
    const u1 = keys();
    assert.equal(r.claim('u1', u1, 300, undefined, need(t1)).outcome, 'created');
    refused('u2', t1, /already used/);
    // An existing name with its own keys needs no token.
    assert.equal(r.claim('u1', u1, 400, undefined, need(undefined)).outcome, 'same');
    assert.equal(r.claim('alice', keys(), 300, undefined, need(forAlice)).outcome, 'created');
    assert.equal(r.claim('u2', keys(), 300, undefined, need(t2)).outcome, 'created');
    // Only hashes are stored.
    const raw = JSON.stringify(
      (r as unknown as { db: { prepare(s: string): { all(): unknown[] } } }).db.prepare('SELECT * FROM invites').all(),
    );
    assert.ok(!raw.includes(t1) && !raw.includes(t2));
    r.close();
  });
});
