import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeIdFromKey } from '../../src/identity/fingerprint.ts';
import { Identity } from '../../src/identity/identity.ts';
import { bytesEqual } from '../../src/util/bytes.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { authorityFor } from '../../src/secp2psip/name-authority.ts';
import { admitWithFailover, ringOptions } from '../../src/secp2psip/roles.ts';
import { SimClock } from '../../src/util/clock.ts';
import { SecTestnet } from './testnet.ts';

/** The adapter's admission at start (roles.ts): every bootstrap of the set, in order, rounds with a growing wait. */
describe('adapter admission with fail-over', () => {
  function tempEndpoint(t: SecTestnet, name: string) {
    const id = Identity.generate();
    return t.net.endpoint({ id: nodeIdFromKey(id.bundle.sig), addr: name, key: id.bundle.sig });
  }

  it('an adapter whose bootstrap is down is admitted by another of the set and joins the ring', async () => {
    const t = await SecTestnet.create(2, { bootstraps: 2, seed: 3 });
    try {
      await t.stopBootstrap(0);
      const a = await t.addAdapter({ via: 0 });
      assert.equal(a.ring.successor.id === a.ring.id, false, 'on the ring with the others');
      // The ring drops the stopped bootstrap only after suspicion (two unanswered RPCs over two periods),
      // and stores need a confirmed owner: give it a few periods. Simulated time: 8 s was too short for
      // about one ring layout in seven (ring ids come from fresh keys), and the REGISTER then timed out.
      await t.run(20_000);
      // It registers users through the bootstrap that admitted it (here a name that bootstrap owns).
      let name = 'zoe';
      for (let i = 0; !bytesEqual(authorityFor(name, t.info).key, t.info[1].key); i++) name = `zoe${i}`;
      const user = await t.settle(a.ensureUser(name));
      assert.equal(user.name, name);
    } finally {
      t.close();
    }
  });

  it('keeps asking, with a growing wait, until a bootstrap comes up', async () => {
    const t = await SecTestnet.create(1, { bootstraps: 2, seed: 4 });
    try {
      await t.stopBootstrap(0);
      await t.stopBootstrap(1);
      const ep = tempEndpoint(t, 'tmp-wait');
      const t0 = t.clock.now();
      const got = admitWithFailover({ endpoint: ep, clock: t.clock }, t.info, { budgetMs: 60_000 });
      await t.run(5000);
      await t.startBootstrap(1);
      const { admitted, via } = await t.settle(got);
      assert.ok(bytesEqual(via.key, t.info[1].key), 'admitted by the one that came back');
      assert.equal(admitted.bootstraps.length, 2, 'and learns the whole set');
      assert.ok(t.clock.now() - t0 >= 5000);
      await ep.close();
    } finally {
      t.close();
    }
  });

  it('gives up after its budget, naming every bootstrap it asked', async () => {
    const t = await SecTestnet.create(0, { bootstraps: 2, seed: 5 });
    try {
      await t.stopBootstrap(0);
      await t.stopBootstrap(1);
      const ep = tempEndpoint(t, 'tmp-none');
      const t0 = t.clock.now();
      await assert.rejects(
        t.settle(admitWithFailover({ endpoint: ep, clock: t.clock }, t.info, { budgetMs: 10_000 }), 120_000),
        (e) => isOverlayError(e, 'RPC_UNREACHABLE') && e.message.includes('boot-0') && e.message.includes('boot-1'),
      );
      const took = t.clock.now() - t0;
      assert.ok(took >= 10_000 && took < 30_000, `gave up after ${took} ms`);
    } finally {
      t.close();
    }
  });

  it('ring options are the same for every role: admitted ids only, defaults in one place', () => {
    const clock = new SimClock();
    const o = ringOptions([new Uint8Array(32)], clock);
    assert.equal(o.stabilizeMs, 1000);
    assert.equal(o.rpcTimeoutMs, 2000);
    assert.equal(o.installHandler, false);
    assert.equal(ringOptions([], clock, { stabilizeMs: 250 }).stabilizeMs, 250);
  });
});
