import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { defaultParams } from '../../src/dht/whanau/params.ts';
import { TOKEN_BYTES } from '../../src/dht/whanau/query-token.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { WhanauDaemon } from '../../src/whanausip/whanau-daemon.ts';

/** Seed 003 section 4.3 over real TLS: access is decided by the key the caller proved in the handshake. */
describe('Whanau access control over TLS', { timeout: 180_000 }, () => {
  const params = defaultParams(10, { periodMs: 3600_000, rpcTimeoutMs: 15_000 });
  let admin: WhanauDaemon;
  let bob: WhanauDaemon;
  let alice: WhanauDaemon;
  let mallory: WhanauDaemon;
  let eve: WhanauDaemon;

  const start = (adminKeys?: Uint8Array[]) =>
    WhanauDaemon.start({ host: '127.0.0.1', port: 0, params, schedule: false, adminKeys });

  before(async () => {
    admin = await start();
    [bob, alice, mallory, eve] = await Promise.all([start([admin.identity.bundle.sig]), start(), start(), start()]);
    // alice and bob are social peers; eve added bob but bob never added eve; mallory is nobody's peer.
    assert.equal(await alice.addPeer({ hash: bob.hash, addr: bob.self.addr }), true);
    assert.equal(await bob.addPeer({ hash: alice.hash, addr: alice.self.addr }), true);
    assert.equal(await eve.addPeer({ hash: bob.hash, addr: bob.self.addr }), true);
  });
  after(async () => {
    await Promise.all([admin, bob, alice, mallory, eve].map((d) => d?.close()));
  });

  const refused = (e: unknown) => isOverlayError(e, 'RPC_REFUSED');

  it('a node that is not a peer cannot ask for random walks; a peer can', async () => {
    const walk = { length: 0, count: 1 };
    await assert.rejects(mallory.endpoint.request(bob.self, 'whanau.walk', walk), refused);
    await assert.rejects(mallory.endpoint.request(bob.self, 'whanau.ping', {}), refused);
    const ok = (await alice.endpoint.request(bob.self, 'whanau.walk', walk)) as { walks: unknown[] };
    assert.equal(ok.walks.length, 1);
    assert.ok(bob.node.stats.refused >= 2);
  });

  it('a link only one side added is not walked', async () => {
    await assert.rejects(eve.endpoint.request(bob.self, 'whanau.walk', { length: 0, count: 1 }), refused);
    await eve.node.refreshPeers();
    assert.deepEqual(eve.node.activePeers(), [], "bob never added eve: eve's walks may not step to bob");
    await bob.node.refreshPeers();
    assert.deepEqual(
      bob.node.activePeers().map((p) => p.id),
      [alice.hash],
    );
  });

  it('control calls need a configured admin key', async () => {
    for (const d of [alice, mallory]) {
      await assert.rejects(d.endpoint.request(bob.self, 'whanau.dump', {}), refused);
      await assert.rejects(d.endpoint.request(bob.self, 'whanau.setup', {}), refused);
      await assert.rejects(d.endpoint.request(bob.self, 'whanau.addPeer', { ref: d.self }), refused);
    }
    const dump = (await admin.endpoint.request(bob.self, 'whanau.dump', {})) as { self: { id: string } };
    assert.equal(dump.self.id, bob.hash);
  });

  it('public calls are open, but work at the end of a walk needs a query token', async () => {
    const key = (await mallory.endpoint.request(bob.self, 'whanau.getKey', {})) as { ref: { id: string } };
    assert.equal(key.ref.id, bob.hash);
    await assert.rejects(
      mallory.endpoint.request(bob.self, 'whanau.try', { key: alice.hash, token: new Uint8Array(TOKEN_BYTES) }),
      refused,
    );
  });

  it('a peer whose TLS key does not hash to the configured hash is not added', async () => {
    const before = mallory.stats.probesFailed;
    assert.equal(await mallory.addPeer({ hash: alice.hash, addr: bob.self.addr }), false);
    assert.equal(mallory.stats.probesFailed, before + 1);
    assert.deepEqual(mallory.node.peerList(), []);
  });
});
