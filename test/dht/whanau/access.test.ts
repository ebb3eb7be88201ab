import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { whanauHandler } from '../../../src/dht/whanau/dispatch.ts';
import type { WhanauNode } from '../../../src/dht/whanau/node.ts';
import { defaultParams } from '../../../src/dht/whanau/params.ts';
import { preferentialAttachment } from '../../../src/sim/social-graph.ts';
import { isOverlayError, OverlayError } from '../../../src/util/errors.ts';
import { SeededRandom } from '../../../src/util/random.ts';
import {
  ed25519Signer,
  encodeLocationRecord,
  locationRecordChecker,
  recordKey,
  signLocationRecord,
} from '../../../src/whanausip/location-record.ts';
import { makeNode, refFor, TestNet } from './harness.ts';

const ADMIN = refFor(9999);

/** n nodes with signed location records on a preferential-attachment graph. */
function network(n: number, seed: number, params = defaultParams(n)) {
  const net = new TestNet();
  const nodes: WhanauNode[] = [];
  for (let i = 0; i < n; i++)
    nodes.push(makeNode(net, i, params, { admin: [ADMIN.key], checker: locationRecordChecker }));
  const rnd = new SeededRandom(seed);
  const e = preferentialAttachment(n, 4, rnd);
  for (let k = 0; k < e.count; k++) {
    nodes[e.a[k]].addPeer(nodes[e.b[k]].self);
    nodes[e.b[k]].addPeer(nodes[e.a[k]].self);
  }
  const keys: string[] = [];
  nodes.forEach((node, i) => {
    const signer = ed25519Signer(new Uint8Array(32).fill(i + 1));
    const rec = signLocationRecord(
      {
        value: `sip:user${i}@10.0.0.${i}:5060`,
        created: net.clock.wallNow(),
        ttl: 3600,
        host: `10.0.0.${i}`,
        port: 5060,
      },
      signer,
    );
    const key = recordKey(signer.publicKey);
    node.publish({ key, value: encodeLocationRecord(rec) });
    keys.push(key);
  });
  return { net, nodes, keys, params, rnd };
}

const refused = (re: RegExp) => (e: unknown) => isOverlayError(e, 'RPC_REFUSED') && re.test((e as Error).message);

describe('Whanau access control (seed 003 section 4.3)', () => {
  it('only social peers may ask for random walks; a half-added link is never walked', async () => {
    const { net, nodes } = network(12, 1);
    const a = nodes[0];
    const stranger = refFor(500);
    const t = net.transport(stranger);
    await assert.rejects(net.until(t.request(a.self, 'whanau.walk', { length: 1, count: 1 })), refused(/social peers/));
    await assert.rejects(net.until(t.request(a.self, 'whanau.ping', {})), refused(/social peers/));
    const ask = { length: 1, count: 1, question: { m: 'sampleRecord' } };
    await assert.rejects(net.until(t.request(a.self, 'whanau.askWalk', ask)), refused(/social peers/));
    // the stranger is added by a, but a is not added back: a's ping is refused and the link stays unused
    const s = makeNode(net, 500, a.params);
    a.addPeer(s.self);
    await net.until(a.refreshPeers());
    assert.equal(a.peerList().find((p) => p.ref.addr === s.self.addr)?.mutual, false);
    assert.ok(!a.activePeers().some((p) => p.addr === s.self.addr));
    // once a peer, walks are served
    const peer = nodes.find((n) => a.isPeerKey(n.self.key)) as WhanauNode;
    const walk = await net.until(net.transport(peer.self).request(a.self, 'whanau.walk', { length: 0, count: 2 }));
    assert.equal((walk as { walks: unknown[] }).walks.length, 2);
    // a walk carrying a question is answered by its end and comes back with the answer
    const asked = (await net.until(
      net.transport(peer.self).request(a.self, 'whanau.askWalk', { ...ask, count: 3 }),
    )) as { walks: { ref: { addr: string }; answer: { record: { key: string } | null } }[] };
    assert.equal(asked.walks.length, 3);
    for (const w of asked.walks) {
      const end = nodes.find((n) => n.self.addr === w.ref.addr) as WhanauNode;
      assert.ok(w.answer.record && end.records.has(w.answer.record.key), 'the end answered with its own record');
    }
    await assert.rejects(
      net.until(net.transport(peer.self).request(a.self, 'whanau.askWalk', { ...ask, question: { m: 'try' } })),
      refused(/bad walk question/),
    );
  });

  it('only admin keys may call control methods', async () => {
    const { net, nodes } = network(12, 2);
    const a = nodes[0];
    const peer = nodes.find((n) => a.isPeerKey(n.self.key)) as WhanauNode;
    for (const who of [refFor(501), peer.self]) {
      const t = net.transport(who);
      for (const m of ['whanau.addPeer', 'whanau.setup', 'whanau.lookup', 'whanau.dump', 'whanau.removePeer'])
        await assert.rejects(net.until(t.request(a.self, m, {})), refused(/administrators only/), m);
    }
    const admin = net.transport(ADMIN);
    const added = await net.until(admin.request(a.self, 'whanau.addPeer', { ref: refFor(777) }));
    assert.ok((added as { peers: number }).peers > 0);
    assert.ok(a.isPeerKey(refFor(777).key));
    const dump = (await net.until(admin.request(a.self, 'whanau.dump', {}))) as { peers: unknown[] };
    assert.ok(dump.peers.length > 0);
    await assert.rejects(
      net.until(admin.request(a.self, 'whanau.addPeer', { ref: { id: 'x' } })),
      refused(/malformed/),
    );
    await assert.rejects(net.until(admin.request(a.self, 'whanau.nope', {})), refused(/unknown method/));
  });

  it('TRY, GET-ID and SUCCESSORS need a fresh query token from the end of a walk', async () => {
    const { net, nodes, keys } = network(12, 3);
    const a = nodes[0];
    const t = net.transport(refFor(502));
    await assert.rejects(net.until(t.request(a.self, 'whanau.try', { key: keys[1] })), refused(/malformed/));
    await assert.rejects(
      net.until(t.request(a.self, 'whanau.try', { key: keys[1], token: new Uint8Array(36) })),
      refused(/token/),
    );
    const token = a.tokens.mint();
    await net.until(t.request(a.self, 'whanau.try', { key: keys[1], token }));
    await assert.rejects(net.until(t.request(a.self, 'whanau.try', { key: keys[1], token })), refused(/token/));
  });
});

describe('Whanau SETUP and LOOKUP with signed location records', () => {
  it('forged and expired records are dropped; a lookup of an unknown key ends "not found" within the retry limit', async () => {
    const { net, nodes, keys, params } = network(40, 4);
    // one node lies: every record it serves or relays has its value rewritten after signing
    const liar = nodes[5];
    const honestHandler = whanauHandler(liar);
    const forge = (kv: { key: string; value: Uint8Array }) => {
      const v = new Uint8Array(kv.value);
      v[v.length - 70] ^= 1;
      return { key: kv.key, value: v };
    };
    net.listen(liar.self.addr, async (method, payload, caller) => {
      const r = (await honestHandler(method, payload, caller)) as Record<string, unknown>;
      if (method === 'whanau.sampleRecord' && r.record) return { record: forge(r.record as never) };
      if (method === 'whanau.successors') return { records: (r.records as never[]).map(forge) };
      if (method === 'whanau.askWalk') {
        // SETUP answers that end at or pass through the liar: every record in them is rewritten.
        const walks = r.walks as { ref: unknown; answer: Record<string, unknown> | null }[];
        return {
          walks: walks.map((w) => {
            const a = w.answer;
            if (a?.record) return { ...w, answer: { record: forge(a.record as never) } };
            if (a?.records) return { ...w, answer: { records: (a.records as never[]).map(forge) } };
            return w;
          }),
        };
      }
      if (method === 'whanau.query')
        return { value: r.value ? forge({ key: keys[0], value: r.value as Uint8Array }).value : null };
      return r;
    });
    const epoch = nodes[0].nextEpoch();
    await net.until(Promise.all(nodes.map((n) => n.setup(epoch))));
    const dropped = nodes.reduce((s, n) => s + n.stats.invalidRecordsDropped, 0);
    assert.ok(dropped > 0, 'forged records were seen and dropped');
    for (const n of nodes)
      for (const s of n.published?.succ ?? [])
        for (const [k, v] of s ?? [])
          assert.ok(locationRecordChecker.check(k, v, net.clock.wallNow()), `stored record ${k} fails the checker`);
    const found = await net.until(Promise.all(keys.map((k, i) => nodes[(i * 7) % 40].lookup(k))));
    assert.ok(found.filter((r) => r.value !== null).length >= 38, 'nearly every key is found');

    // unknown key: null after exactly lookupLimit tries, bounded messages; get() names the error
    const missing = 'ab'.repeat(20);
    const r = await net.until(nodes[1].lookup(missing));
    assert.equal(r.value, null);
    assert.equal(r.tries, params.lookupLimit);
    assert.ok(r.messages <= params.lookupLimit * (params.tryLimit + 1));
    await assert.rejects(net.until(nodes[1].get(missing)), (e) => isOverlayError(e, 'DHT_NOT_FOUND'));

    // forged publish is refused; after the TTL passes, stored records fail the checker and lookups find nothing
    const signer = ed25519Signer(new Uint8Array(32).fill(200));
    const rec = signLocationRecord(
      { value: 'sip:x@h', created: net.clock.wallNow(), ttl: 60, host: 'h', port: 1 },
      signer,
    );
    assert.throws(
      () =>
        nodes[0].publish({
          key: recordKey(signer.publicKey),
          value: encodeLocationRecord({ ...rec, value: 'sip:y@h' }),
        }),
      (e) => e instanceof OverlayError && e.code === 'DHT_RECORD_INVALID',
    );
    net.clock.advance(3601_000);
    const late = await net.until(nodes[2].lookup(keys[3]));
    assert.equal(late.value, null);
  });

  it('tolerates clock skew: a node that starts SETUP 20 s late is still waited for', async () => {
    const { net, nodes } = network(16, 5);
    const late = nodes[3];
    const epoch = nodes[0].nextEpoch();
    const others = nodes.filter((n) => n !== late).map((n) => n.setup(epoch));
    const lateRun = new Promise((resolve) => net.clock.setTimer(20_000, () => resolve(late.setup(epoch))));
    await net.until(Promise.all([...others, lateRun]));
    const asked = nodes.filter((n) => n.published?.fingers.some((f) => f?.refs.some((r) => r.addr === late.self.addr)));
    assert.ok(asked.length > 0, 'the late node became a finger of others');
    for (const n of nodes) assert.equal(n.published?.complete, true);
  });
});
