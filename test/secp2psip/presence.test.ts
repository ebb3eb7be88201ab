import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TICK_MS } from '../../src/secp2psip/presence.ts';
import { RecordingPresence } from './recording-inbox.ts';
import { bindPhone, SecTestnet } from './testnet.ts';

/**
 * Presence between adapters on the in-memory ring: bob's adapter watches
 * alice for bob's (subscribed) phones; alice's adapter pushes every change:
 * her phone registering, its registration lapsing, a PUBLISH with a note.
 */
for (const mode of ['signed', 'protected'] as const)
  describe(`presence between adapters (in-memory ring, ${mode} mode)`, () => {
    let t: SecTestnet;
    const phones: RecordingPresence[] = [];
    before(async () => {
      t = await SecTestnet.create(3, {
        k: 3,
        n: 5,
        mode,
        presencePhones: (i) => {
          phones[i] = new RecordingPresence();
          return phones[i];
        },
      });
      t.adapters.forEach((a, i) => {
        phones[i].online = (name) => a.phones.bindingsOf(name).length > 0;
      });
      await t.settle(t.adapters[0].ensureUser('alice'));
      await t.settle(t.adapters[1].ensureUser('bob'));
    });
    after(() => t.close());

    const last = () => phones[1].notified.at(-1)?.state;

    it('a watch answers the signed current state; registering, publishing a note and lapsing are pushed', async () => {
      const [a, b] = t.adapters;
      const bob = b.users.get('bob');
      assert.ok(bob);
      phones[1].subs.add('bob>alice');
      const first = await t.settle(b.presence.watch(bob, 'alice'));
      assert.equal(first.open, false, 'alice has no phone yet');

      bindPhone(a, 'alice', 'sip:alice@10.0.0.1:5070', 30);
      a.presence.changed('alice');
      await t.run(100);
      assert.equal(last()?.open, true);
      assert.equal(phones[1].notified.at(-1)?.presentity, 'alice');

      a.presence.publish('alice', { note: 'busy' }, 600);
      await t.run(100);
      assert.deepEqual({ open: last()?.open, note: last()?.note }, { open: true, note: 'busy' });

      a.presence.publish('alice', { open: false }, 600);
      await t.run(100);
      assert.equal(last()?.open, false);
      a.presence.publish('alice', undefined, 0);
      await t.run(100);
      assert.equal(last()?.open, true, 'publication removed: the registration decides again');

      // Her phone's registration lapses (30 s): the next tick sees it and bob's phones are told.
      const before = phones[1].notified.length;
      await t.run(30_000 + 2 * TICK_MS);
      assert.equal(last()?.open, false);
      assert.ok(phones[1].notified.length > before);
      const seqs = phones[1].notified.map((n) => n.state.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((x, y) => x - y),
        'states arrive in order',
      );
    });

    it("alice's adapter unreachable: a new watcher shows her last state as signed into the ring", async () => {
      const [a, , c] = t.adapters;
      await t.settle(c.ensureUser('carol'));
      const carol = c.users.get('carol');
      assert.ok(carol);
      bindPhone(a, 'alice', 'sip:alice@10.0.0.1:5072', 3600);
      a.presence.publish('alice', { note: 'in a meeting' }, 600);
      // Her record is in the ring before her adapter goes: wait for the ring's answer, not a fixed time.
      await t.settle(a.presence.recorded('alice'));
      t.net.kill(a.endpoint.self.addr);
      try {
        const seen = await t.settle(c.presence.watch(carol, 'alice'));
        assert.deepEqual({ open: seen.open, note: seen.note }, { open: true, note: 'in a meeting' });
      } finally {
        t.net.revive(a.endpoint.self.addr);
        a.presence.publish('alice', undefined, 0);
        await t.run(3000);
      }
    });

    it('watching an unknown user is refused as unknown; a push to a watcher with no subscription is refused', async () => {
      const [a, b] = t.adapters;
      const bob = b.users.get('bob');
      assert.ok(bob);
      await assert.rejects(t.settle(b.presence.watch(bob, 'nobody')), /unknown user/);
      phones[1].subs.delete('bob>alice');
      const before = phones[1].notified.length;
      bindPhone(a, 'alice', 'sip:alice@10.0.0.1:5071', 3600);
      a.presence.changed('alice');
      await t.run(100);
      assert.equal(phones[1].notified.length, before, 'no subscription, no NOTIFY');
    });
  });
