import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { placeCall } from '../../src/secp2psip/caller.ts';
import { getHeader } from '../../src/sip/message.ts';
import { bindPhone, phoneInvite, SecTestnet } from './testnet.ts';

describe('SecP2PSIP registration and call setup (in-memory ring)', () => {
  let t: SecTestnet;
  before(async () => {
    t = await SecTestnet.create(6, { k: 3, n: 5 });
  });
  after(() => t.close());

  it('registers users and redirects a call to the callee phone after both sides verify', async () => {
    const [a, b] = t.adapters;
    const alice = await t.settle(a.ensureUser('alice'));
    await t.settle(b.ensureUser('bob'));
    bindPhone(b, 'bob', 'sip:bob@10.0.0.2:5080');
    const req = phoneInvite('alice', 'bob');
    const out = await t.settle(placeCall(a.caller, req, alice, 'bob'));
    assert.ok(out.ok, out.ok ? '' : `${out.status} ${out.reason}`);
    assert.equal(out.response.status, 302);
    assert.equal(getHeader(out.response, 'Contact'), '<sip:bob@10.0.0.2:5080>');
    assert.equal(getHeader(out.response, 'Call-ID'), getHeader(req, 'Call-ID'));
    assert.equal(out.callee.bundle.name, 'bob');
    assert.equal(t.bootstraps[0].registry.count(), 2);
  });

  it('reuses a verified callee for later calls, and looks up afresh when the cached location is stale', async () => {
    const [a, b, c] = t.adapters;
    const alice = a.users.get('alice') ?? (await t.settle(a.ensureUser('alice')));
    a.verified.cacheMs = 60_000;
    b.verified.cacheMs = 60_000;
    try {
      assert.ok((await t.settle(placeCall(a.caller, phoneInvite('alice', 'bob'), alice, 'bob'))).ok);
      const lookups = a.ring.counters.lookups;
      const again = await t.settle(placeCall(a.caller, phoneInvite('alice', 'bob'), alice, 'bob'));
      assert.ok(again.ok);
      assert.equal(a.ring.counters.lookups, lookups, 'no ring lookup for a cached callee');

      // Stale entry: bob "moved" (the cache points at an adapter that does not know him).
      const entry = a.verified.cache.get('bob');
      assert.ok(entry);
      a.verified.cache.set('bob', { ...entry, user: { ...entry.user, adapter: c.endpoint.self } });
      const moved = await t.settle(placeCall(a.caller, phoneInvite('alice', 'bob'), alice, 'bob'));
      assert.ok(moved.ok, moved.ok ? '' : moved.reason);
      assert.ok(a.ring.counters.lookups > lookups, 'looked up again');
      assert.equal(a.verified.cache.get('bob')?.user.adapter.id, b.endpoint.self.id);
    } finally {
      a.verified.cacheMs = 0;
      b.verified.cacheMs = 0;
    }
  });

  it('callee side: a cached caller key that does not verify the INVITE is looked up afresh', async () => {
    const [a, b, c] = t.adapters;
    const alice = a.users.get('alice') ?? (await t.settle(a.ensureUser('alice')));
    await t.settle(c.ensureUser('carol'));
    b.verified.cacheMs = 60_000;
    try {
      // Poison bob's adapter's cache: "alice" with carol's key (as if alice had re-registered since).
      const carol = await t.settle(b.verified.verify('carol'));
      const real = await t.settle(b.verified.verify('alice', true));
      b.verified.cache.set('alice', { user: { ...real, key: carol.key }, until: t.clock.now() + 60_000 });
      const out = await t.settle(placeCall(a.caller, phoneInvite('alice', 'bob'), alice, 'bob'));
      assert.ok(out.ok, out.ok ? '' : out.reason);
      assert.ok(b.verified.cache.get('alice')?.user.key.equals(real.key));
    } finally {
      b.verified.cacheMs = 0;
    }
  });
});
