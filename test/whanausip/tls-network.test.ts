import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { recordKey } from '../../src/whanausip/location-record.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { percentile } from '../../src/util/stats.ts';
import { startTlsTestnet, type TlsTestnet } from './tls-testnet.ts';

/** Seed 003 chapter 4 on real sockets: 30 Whanau nodes over TLS 1.3 on loopback, one SETUP, every record found. */
describe('30 WhanauSIP DHT nodes over TLS', { timeout: 300_000 }, () => {
  let net: TlsTestnet;
  /** Where a key sits after SETUP: how many dbs and successor tables hold it (for failure messages). */
  const coverage = (key: string): string => {
    let db = 0;
    let succ = 0;
    for (const d of net.daemons) {
      if (d.node.published?.dbKeys.includes(key)) db++;
      if (d.node.published?.succ.some((s) => s?.has(key))) succ++;
    }
    return `in ${db} db and ${succ} successor tables`;
  };
  before(async () => {
    // One layer (no clustering attacker here), 40 db walks and 24 successor walks of t = 6 records: the db samples
    // records in proportion to degree, and at 30 nodes the default
    // tables (8 walks, t = 3, two layers) leave a key uncovered now and then.
    net = await startTlsTestnet(30, { seed: 3, params: { layers: 1, t: 6, rd: 40, rs: 24 } });
  });
  after(async () => {
    await net?.close();
  });

  it('learns every peer key from its hash, then SETUP builds tables on every node', async () => {
    for (const d of net.daemons) {
      const known = d.node.peerList();
      assert.equal(known.length, d.book.list().length, 'every configured peer resolved');
      for (const p of known) assert.equal(recordKey(p.ref.key), p.ref.id, 'pinned key hashes to the peer hash');
    }
    const dialedBefore = net.daemons.reduce((s, d) => s + d.endpoint.stats.connectionsDialed, 0);
    const epoch = net.daemons[0].node.nextEpoch();
    const summaries = await Promise.all(net.daemons.map((d) => d.setup(epoch)));
    // SETUP's questions travel with the walks: links are the social ones, each mostly dialed by one side only
    // (both, when a peer's ping comes later than the grace a loaded machine allows).
    const dialed = net.daemons.reduce((s, d) => s + d.endpoint.stats.connectionsDialed, 0) - dialedBefore;
    assert.ok(dialed <= net.edges.length * 1.5, `${dialed} links dialed in SETUP for ${net.edges.length} social links`);
    for (const [i, s] of summaries.entries()) {
      assert.equal(s.complete, true);
      assert.ok((s.db as number) > 0, `node ${i} sampled records`);
      assert.ok(
        (s.fingers as number[]).every((f) => f > 0),
        `node ${i} has fingers in every layer`,
      );
      // Walks went over links both sides added: every peer answered a peer-only ping.
      assert.equal(net.daemons[i].node.activePeers().length, net.daemons[i].node.peerList().length);
    }
  });

  it("every node's record is found from other nodes at the first lookup, verified, with its contact", async () => {
    const rnd = new SeededRandom(9);
    const messages: number[] = [];
    await Promise.all(
      net.daemons.map(async (target, i) => {
        let j = rnd.int(net.daemons.length - 1);
        if (j >= i) j++;
        const r = await net.daemons[j].lookupRecord(target.hash);
        assert.ok(
          r.record,
          `record of node ${i} not found from node ${j} (${r.tries} tries; ${coverage(target.hash)})`,
        );
        assert.equal(recordKey(r.record.publicKey), target.hash);
        assert.equal(r.record.value, target.contact());
        assert.equal(r.record.port, Number(target.self.addr.split(':')[1]));
        messages.push(r.messages);
      }),
    );
    assert.ok(percentile(messages, 50) <= 4, `median messages ${percentile(messages, 50)}`);
  });

  it('a lookup of a key nobody published ends "not found" within the retry limits', async () => {
    const d = net.daemons[5];
    const r = await d.lookupRecord('ab'.repeat(20));
    assert.equal(r.record, null);
    assert.equal(r.notReady, false);
    const p = net.params;
    assert.ok(r.tries <= p.lookupLimit, `${r.tries} tries`);
    assert.ok(r.messages <= p.lookupLimit * (p.tryLimit + 1), `${r.messages} messages`);
  });
});
