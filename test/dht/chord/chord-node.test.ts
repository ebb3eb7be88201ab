import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import { keyPosition, sha1Id } from '../../../src/dht/store/ring-id.ts';
import type { NodeRef } from '../../../src/rpc/types.ts';
import { ChordTestnet } from '../../../src/sim/chord-testnet.ts';
import { isOverlayError } from '../../../src/util/errors.ts';

async function ring(n: number, chord = {}) {
  return ChordTestnet.create(n, { seed: 11, chord: { replicas: 3, ...chord } }, 10_000);
}

describe('ChordNode', () => {
  it('a single node owns everything; put, get and getMany work alone', async () => {
    const t = await ring(1);
    const [n] = t.liveNodes();
    const p = await t.settle(n.put('bob', '10.0.0.1:5060', 60_000));
    assert.ok(p.ok);
    const g = await t.settle(n.get('bob'));
    assert.ok(g.ok && g.value === '10.0.0.1:5060');
    const many = await t.settle(n.getMany(['bob', 'bob.1']));
    assert.ok(many.get('bob')?.ok);
    const miss = many.get('bob.1');
    assert.ok(miss && !miss.ok && miss.error === 'DHT_NOT_FOUND');
  });

  it('records expire after their TTL, and the publisher republishes lost records', async () => {
    const t = await ring(12, { republishMs: 20_000 });
    const nodes = t.liveNodes();
    assert.ok((await t.settle(nodes[0].put('short', 'x', 5000))).ok);
    assert.ok((await t.settle(nodes[5].get('short'))).ok);
    await t.run(6000);
    const gone = await t.settle(nodes[5].get('short'));
    assert.ok(!gone.ok && gone.error === 'DHT_NOT_FOUND');
    nodes[0].unpublish('short');

    const publisher = nodes[1];
    assert.ok((await t.settle(publisher.put('carol', 'v1', 600_000))).ok);
    // Crash every node holding a copy (never the publisher), at once.
    const holders = t.liveNodes().filter((n) => n.store.has('carol') && n !== publisher);
    for (const h of holders) t.kill(h.id);
    const lost = t.liveNodes().filter((n) => n.store.has('carol') && n !== publisher);
    assert.equal(lost.length, 0);
    await t.run(25_000);
    const back = await t.settle(nodes[7].get('carol'));
    assert.ok(back.ok && back.value === 'v1', JSON.stringify(back));
    assert.ok(t.nodes.get(t.ownerOf(keyPosition('carol')))?.store.has('carol'));
  });

  it('refuses records that break limits with typed errors', async () => {
    const t = await ring(5, { store: { maxRecordBytes: 256 } });
    const n = t.liveNodes()[2];
    const big = await t.settle(n.put('big', 'x'.repeat(1000), 60_000));
    assert.ok(!big.ok && big.error === 'DHT_RECORD_TOO_LARGE', JSON.stringify(big));
    const bad = await t.settle(n.put('neg', 'x', -5));
    assert.ok(!bad.ok && bad.error === 'DHT_RECORD_INVALID');
  });

  it('ignores refs whose id is not bound to their key, and counts malformed requests', async () => {
    const t = await ring(6);
    const victim = t.liveNodes()[0];
    const predBefore = victim.pred?.id;
    // A node that claims the id right before the victim, with a key that does not hash to it.
    const key = new Uint8Array(32).fill(7);
    const forged: NodeRef = { id: victim.id.replace(/.$/, (c) => (c === '0' ? 'f' : '0')), addr: 'forger', key };
    assert.notEqual(forged.id, sha1Id(key));
    const ep = t.net.endpoint(forged);
    await t.settle(ep.request(victim.self, 'chord.neighbors', { notify: true, from: forged }));
    assert.equal(victim.pred?.id, predBefore);
    assert.ok(victim.counters.refusedRefs >= 1);
    await assert.rejects(t.settle(ep.request(victim.self, 'chord.find', { target: 'not-an-id' })), (e) =>
      isOverlayError(e, 'RPC_REFUSED'),
    );
    assert.equal(victim.counters.malformed, 1);
    // A node cannot be created with an unbound id, nor join through an unbound bootstrap.
    assert.throws(
      () =>
        ChordNode.create({
          endpoint: t.net.endpoint({ ...forged, addr: 'forger2' }),
          clock: t.clock,
          random: t.random,
        }),
      (e) => isOverlayError(e, 'IDENTITY_BAD_KEY'),
    );
    const honest = t.createNode();
    await assert.rejects(honest.join(forged), (e) => isOverlayError(e, 'IDENTITY_BAD_KEY'));
  });

  it('accepts ids assigned by an admission policy instead of derived ones', async () => {
    const admitted = new Map<string, string>();
    const policy = (r: NodeRef) => admitted.get(r.id) === Buffer.from(r.key).toString('hex') || sha1Id(r.key) === r.id;
    const t = new ChordTestnet({ seed: 5, chord: { verifyRef: policy } });
    await t.grow(4);
    const key = new Uint8Array(32).fill(42);
    const id = 'c'.repeat(40);
    admitted.set(id, Buffer.from(key).toString('hex'));
    const n = ChordNode.create(
      { endpoint: t.net.endpoint({ id, addr: 'admitted', key }), clock: t.clock, random: t.random.fork() },
      { verifyRef: policy },
    );
    await t.settle(n.join(t.liveNodes()[0].self));
    await t.run(10_000);
    assert.ok(t.liveNodes().some((x) => x.successor.id === id));
  });

  it('drops an entry whose key answers at another id (the node was admitted again at the same address)', async () => {
    const admitted = new Map<string, string>();
    const policy = (r: NodeRef) => admitted.get(r.id) === Buffer.from(r.key).toString('hex') || sha1Id(r.key) === r.id;
    const t = new ChordTestnet({ seed: 6, chord: { verifyRef: policy, stabilizeMs: 500 } });
    await t.grow(6);
    const key = new Uint8Array(32).fill(7);
    const make = (id: string) => {
      admitted.set(id, Buffer.from(key).toString('hex'));
      return ChordNode.create(
        { endpoint: t.net.endpoint({ id, addr: 'readmitted', key }), clock: t.clock, random: t.random.fork() },
        { verifyRef: policy, stabilizeMs: 500 },
      );
    };
    const before = make('3'.repeat(40));
    await t.settle(before.join(t.liveNodes()[0].self));
    await t.run(10_000);
    const pred = t.liveNodes().find((x) => x.successor.id === before.id);
    assert.ok(pred, 'linked at its first id');
    // Crash and come back with a new id, same key and address: the ring still names the old id.
    before.stop();
    await before.endpoint.close();
    const after = make('b'.repeat(40));
    await t.settle(after.join(t.liveNodes()[0].self));
    assert.equal(await t.settle(pred.neighbors(before.self, false)), null, 'the old id gets no answer');
    assert.ok(pred.counters.staleRefs >= 1);
    await t.run(10_000);
    const everyone = [...t.liveNodes(), after];
    assert.ok(
      everyone.every((x) => x.successor.id !== before.id && x.pred?.id !== before.id),
      'no node keeps the old id as neighbour',
    );
    assert.ok(everyone.some((x) => x.successor.id === after.id));
  });
});

describe('ChordNode as a client (a node behind a NAT)', () => {
  it('looks up, puts and gets through the ring, holds no range, and no member ever lists it', async () => {
    const t = await ring(10);
    const members = t.liveNodes();
    const client = t.createNode();
    await t.settle(client.joinAsClient([members[3].self]));
    assert.equal(client.client, true);
    assert.notEqual(client.successor.id, client.id, 'it knows a successor to start lookups from');
    const put = await t.settle(client.put('from-client', 'v', 600_000));
    assert.ok(put.ok, JSON.stringify(put));
    const got = await t.settle(members[7].get('from-client'));
    assert.ok(got.ok && got.value === 'v');
    assert.ok((await t.settle(members[1].put('from-member', 'w', 600_000))).ok);
    const back = await t.settle(client.get('from-member'));
    assert.ok(back.ok && back.value === 'w');
    const lr = await t.settle(client.lookup('from-member'));
    assert.ok(lr.ok && lr.owner.id !== client.id);
    // Many stabilize periods later, it is in nobody's predecessor, successor list or fingers, and stores nothing.
    await t.run(30_000);
    for (const m of members) {
      assert.notEqual(m.pred?.id, client.id);
      assert.ok(!m.successors.some((s) => s.id === client.id));
      assert.ok(!m.fingers.distinct().some((f) => f.id === client.id));
    }
    assert.equal(client.store.size, 0);
    // What it put is still there (it republishes like a member).
    assert.ok((await t.settle(members[2].get('from-client'))).ok);
    await t.settle(client.leave());
    assert.equal(client.stopped, true);
  });
});
