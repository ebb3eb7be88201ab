import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { defaultParams } from '../../src/dht/whanau/params.ts';
import { Identity } from '../../src/identity/identity.ts';
import { parseRelayAddr } from '../../src/rpc/relay.ts';
import { checkReachable } from '../../src/rpc/relay-dialback.ts';
import { checkLocationRecord } from '../../src/whanausip/location-record.ts';
import { WhanauDaemon } from '../../src/whanausip/whanau-daemon.ts';

/**
 * A WhanauSIP node that finds out by itself that it cannot be dialled (a friend's dial-back), and that replaces a
 * friend that stops relaying for it, on real sockets on loopback. The node bound to 127.0.0.2 dials out from
 * 127.0.0.1, so a friend sees its requests come from another host than the one it advertises: what a NAT looks
 * like to the friend (nothing else in the check depends on the NAT itself).
 */
describe('a WhanauSIP node behind a NAT', { timeout: 120_000 }, () => {
  const params = defaultParams(8, { periodMs: 3600_000 });
  const daemons: WhanauDaemon[] = [];
  after(async () => {
    for (const d of daemons.reverse()) await d.close().catch(() => {});
  });
  const start = async (o: Partial<Parameters<typeof WhanauDaemon.start>[0]> = {}) => {
    const d = await WhanauDaemon.start({ host: '127.0.0.1', port: 0, params, schedule: false, ...o });
    daemons.push(d);
    return d;
  };
  const relaysOf = (d: WhanauDaemon) => {
    const p = parseRelayAddr(d.self.addr);
    return p.ok ? p.value.map((r) => r.addr) : [];
  };

  it('asks a friend to dial it back, learns it cannot be reached, takes friends as relays, and replaces one that stops', async () => {
    const natted = Identity.generate();
    const friends = [await start(), await start(), await start(), await start()];
    // Its friends know its hash (and an address they will find they cannot use).
    for (const f of friends) await f.addPeer({ hash: natted.id, addr: '127.0.0.2:9' });
    const c = await start({
      identity: natted,
      host: '127.0.0.2',
      peers: friends.map((f) => ({ hash: f.hash, addr: f.self.addr })),
      checkReachability: true,
      relayRenewMs: 300,
    });
    assert.equal(c.behindNat, true, `behind a NAT by the dial-back (address ${c.self.addr})`);
    const first = relaysOf(c);
    assert.equal(first.length, 3, `three friends relay (${c.self.addr})`);
    const addrs = friends.map((f) => f.self.addr);
    assert.ok(
      first.every((a) => addrs.includes(a)),
      `only friends relay (${first})`,
    );
    const spare = friends.find((f) => !first.includes(f.self.addr)) as WhanauDaemon;
    // The record names the relays, under its signature.
    const recordHost = () => {
      const r = checkLocationRecord(c.hash, c.node.records.get(c.hash) as Uint8Array, c.clock.wallNow());
      assert.ok(r.ok, r.ok ? '' : r.error);
      return r.value.host;
    };
    c.publishOwnRecord();
    assert.equal(recordHost(), c.self.addr);

    // The first relay stops: after two missed renewals the spare friend takes its place, and the record follows.
    const lost = friends.find((f) => f.self.addr === first[0]) as WhanauDaemon;
    await lost.close();
    const end = Date.now() + 30_000;
    while (relaysOf(c).includes(lost.self.addr)) {
      if (Date.now() > end) assert.fail(`the stopped friend was never replaced (${c.self.addr})`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(relaysOf(c), [spare.self.addr, first[1], first[2]], "the spare friend in the lost one's place");
    assert.equal(recordHost(), c.self.addr, 'the record was published again, naming the new relays');
    // Reached at its new address by a node that never had a link to it: through a relay, pinned to its key.
    const stranger = await start();
    const a = (await stranger.endpoint.request(
      { id: c.hash, addr: c.self.addr, key: c.self.key },
      'whanau.getKey',
      {},
      { timeoutMs: 10_000 },
    )) as { ref: { addr: string } };
    assert.equal(a.ref.addr, c.self.addr, 'it answers, naming its relays');
  });

  it('a node reachable at the address it advertises stays a public one', async () => {
    const friend = await start();
    const id = Identity.generate();
    await friend.addPeer({ hash: id.id, addr: '127.0.0.1:9' });
    const d = await start({
      identity: id,
      peers: [{ hash: friend.hash, addr: friend.self.addr }],
      checkReachability: true,
    });
    assert.equal(d.behindNat, false);
    assert.match(d.self.addr, /^127\.0\.0\.1:\d+$/);
  });

  it('no friend able to tell at start: public for now, asked again (before each SETUP) until one can', async () => {
    const friend = await start();
    const id = Identity.generate();
    const c = await start({
      identity: id,
      host: '127.0.0.2',
      peers: [{ hash: friend.hash, addr: friend.self.addr }],
      checkReachability: true,
    });
    // The friend does not list it yet, so it refuses the dial-back: nothing is known.
    assert.equal(c.reachability, 'unknown');
    assert.equal(c.behindNat, false);
    await friend.addPeer({ hash: id.id, addr: c.self.addr });
    assert.equal(await c.checkReachability(), 'unreachable');
    assert.equal(c.behindNat, true);
    assert.deepEqual(parseRelayAddr(c.self.addr).ok && relaysOf(c), [friend.self.addr]);
  });

  it('the dial-back is for friends only', async () => {
    const friend = await start();
    const stranger = await start();
    const a = await checkReachable(stranger.endpoint, friend.self);
    assert.equal(a.result, 'unknown');
    assert.match(a.reason ?? '', /friends only/);
  });
});
