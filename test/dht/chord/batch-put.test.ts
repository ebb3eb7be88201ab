import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PutEntry } from '../../../src/dht/chord/batch-put.ts';
import type { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import type { PutResult } from '../../../src/dht/chord/chord-types.ts';
import { METHOD } from '../../../src/dht/chord/messages.ts';
import { putManySettled } from '../../../src/dht/chord/settling-put.ts';
import { keyPosition } from '../../../src/dht/store/ring-id.ts';
import { ChordTestnet } from '../../../src/sim/chord-testnet.ts';

/** Count the RPCs `node` sends, by method. */
function countCalls(node: ChordNode): Map<string, number> {
  const n = new Map<string, number>();
  const call = node.call.bind(node);
  node.call = (to, method, payload) => {
    n.set(method, (n.get(method) ?? 0) + 1);
    return call(to, method, payload);
  };
  return n;
}

const entries = (prefix: string, count: number): PutEntry[] =>
  Array.from({ length: count }, (_, i) => ({ key: `${prefix}.${i}`, value: `${prefix} value ${i}` }));

/**
 * ChordNode.putMany: n puts as one batch (lookups sharing their replies, one
 * STORE per holder), each key ending as a put of it alone would: on its owner
 * and r-1 successors, republished by the writer, refused keys reported per key.
 */
describe('several puts as one batch (putMany)', () => {
  it('stores every record on its r replicas, with one STORE per holder and fewer FINDs than one put per key', async () => {
    const t = await ChordTestnet.create(24, { seed: 11, chord: { replicas: 3 } });
    const writer = t.liveNodes()[4];
    const calls = countCalls(writer);
    const batch = entries('alice', 11);
    const res = await t.settle(writer.putMany(batch, 3_600_000));
    for (const [i, r] of res.entries()) assert.ok(r.ok && r.replicas === 3, `${batch[i].key}: ${JSON.stringify(r)}`);
    // Every key on exactly its owner and the owner's two successors (as the simulator's view of the ring says).
    const holderIds = new Set<string>();
    for (const { key, value } of batch) {
      const owner = t.ownerOf(keyPosition(key));
      const want = [owner, t.successorOf(owner, 1), t.successorOf(owner, 2)];
      for (const id of want) {
        assert.equal(t.nodes.get(id)?.store.get(key)?.value, value, `${key} on ${id.slice(0, 8)}`);
        holderIds.add(id);
      }
    }
    const stores = calls.get(METHOD.STORE) ?? 0;
    assert.ok(stores <= holderIds.size, `${stores} STOREs for ${holderIds.size} holders`);
    assert.ok(stores < batch.length * 3);
    // Read back from elsewhere, and the writer republishes them as it does its single puts.
    const reader = t.liveNodes()[17];
    for (const { key, value } of batch) {
      const got = await t.settle(reader.get(key));
      assert.ok(got.ok && got.value === value, key);
      assert.ok(writer.maintenance.published.has(key));
    }
    // The same number of keys put one by one: the batch needed fewer lookup messages.
    const finds = calls.get(METHOD.FIND) ?? 0;
    const single = countCalls(t.liveNodes()[5]);
    for (const e of entries('bob', 11)) assert.ok((await t.settle(t.liveNodes()[5].put(e.key, e.value, 3_600_000))).ok);
    assert.ok(finds <= (single.get(METHOD.FIND) ?? 0), `batch ${finds} FINDs, one by one ${single.get(METHOD.FIND)}`);
  });

  it('a record the store refuses fails alone; a dead holder leaves the others stored', async () => {
    const t = await ChordTestnet.create(12, { seed: 12, chord: { replicas: 3 } });
    const writer = t.liveNodes()[1];
    const batch = [...entries('carol', 5), { key: '', value: 'no key' }];
    // One replica of carol.0 is gone (killed without the ring knowing yet): its records land on the others.
    const owner = t.ownerOf(keyPosition('carol.0'));
    const victim = t.successorOf(owner, 1);
    if (victim !== writer.id) t.kill(victim);
    const res = await t.settle(writer.putMany(batch, 3_600_000));
    const last = res.at(-1) as PutResult;
    assert.ok(!last.ok && last.error === 'DHT_RECORD_INVALID');
    for (const r of res.slice(0, 5)) assert.ok(r.ok && r.replicas >= 2, JSON.stringify(r));
    assert.ok(!writer.maintenance.published.has(''));
  });

  it('the settling batch tries again, every 250 ms, only the records whose owner was not confirmed', async () => {
    const t = await ChordTestnet.create(8, { seed: 13, chord: { stabilizeMs: 1000 } });
    const node = t.liveNodes()[2];
    const tries: Array<{ at: number; done: number; keys: string[] }> = [];
    const putMany = node.putMany.bind(node);
    node.putMany = async (es, ttl) => {
      const tried = { at: node.clock.now(), done: 0, keys: es.map((e) => e.key) };
      tries.push(tried);
      const out = await putMany(es, ttl);
      tried.done = node.clock.now();
      // dave.1 finds no confirmable owner the first two times (as while a node joins next to it).
      return out.map(
        (r, i): PutResult =>
          es[i].key === 'dave.1' && tries.length <= 2
            ? { ok: false, error: 'DHT_LOOKUP_FAILED', reason: 'owner not confirmed' }
            : r,
      );
    };
    const res = await t.settle(putManySettled(node, entries('dave', 4), 60_000, 3000));
    assert.ok(
      res.every((r) => r.ok),
      JSON.stringify(res),
    );
    assert.equal(tries.length, 3);
    assert.deepEqual(tries[1].keys, ['dave.1']);
    assert.deepEqual(tries[2].keys, ['dave.1']);
    assert.equal(tries[1].at - tries[0].done, 250);
    assert.equal(tries[2].at - tries[1].done, 250);
    const got = await t.settle(t.liveNodes()[6].get('dave.1'));
    assert.ok(got.ok && got.value === 'dave value 1');
  });

  it('a record whose owner was not confirmed brings the backed-off tick back to its short period', async () => {
    const t = await ChordTestnet.create(8, { seed: 14, chord: { stabilizeMs: 1000, maxStabilizeMs: 8000 } });
    const writer = t.liveNodes()[3];
    await t.run(60_000);
    assert.ok(writer.maintenance.periodMs > 1000, `backed off at rest (${writer.maintenance.periodMs} ms)`);
    // No owner can be confirmed (as while a node joins next to the keys): every lookup of the batch fails.
    writer.lookupMany = async (targets) =>
      targets.map(() => ({
        ok: false,
        error: 'DHT_LOOKUP_FAILED',
        reason: 'owner not confirmed',
        hops: 0,
        queries: 0,
      }));
    const res = await t.settle(writer.putMany(entries('erin', 3), 60_000));
    assert.ok(res.every((r) => !r.ok && r.error === 'DHT_LOOKUP_FAILED'));
    assert.equal(writer.maintenance.periodMs, 1000, 'the retry comes at the short period');
    assert.ok(writer.maintenance.republishSoon);
  });
});

/**
 * putMany with `storeAfter`: a writer whose records may leave only once something else is durable (a
 * bootstrap's claim). The lookups go at once; no STORE leaves, and nothing enters the republish set, before
 * the gate opens; a gate that fails stores nothing, now or later.
 */
describe('a batch put whose STOREs wait for a gate', () => {
  /** FINDs for the batch's keys and STOREs carrying its records, as `node` sends them (maintenance left out). */
  function watch(node: ChordNode, batch: PutEntry[]) {
    const keys = new Set(batch.map((e) => e.key));
    const positions = new Set(batch.map((e) => keyPosition(e.key)));
    const seen = { finds: 0, stores: 0, lookedUp: false };
    const call = node.call.bind(node);
    node.call = (to, method, payload) => {
      const p = payload as { target?: string; records?: Array<{ key: string }> };
      if (method === METHOD.FIND && p.target !== undefined && positions.has(p.target)) seen.finds++;
      if (method === METHOD.STORE && p.records?.some((r) => keys.has(r.key))) seen.stores++;
      return call(to, method, payload);
    };
    const lookupMany = node.lookupMany.bind(node);
    node.lookupMany = async (...args) => {
      const out = await lookupMany(...args);
      seen.lookedUp = true;
      return out;
    };
    return seen;
  }

  const heldAnywhere = (t: ChordTestnet, key: string) => [...t.nodes.values()].some((n) => n.store.get(key));

  it('looks the owners up at once and sends no STORE before the gate opens', async () => {
    const t = await ChordTestnet.create(24, { seed: 15, chord: { replicas: 3 } });
    const writer = t.liveNodes()[6];
    const batch = entries('frank', 11);
    const seen = watch(writer, batch);
    let open = () => {};
    const gate = new Promise<void>((r) => {
      open = r;
    });
    let done = false;
    const put = writer.putMany(batch, 3_600_000, { storeAfter: gate });
    put.then(() => {
      done = true;
    });
    await t.run(10_000);
    assert.ok(seen.lookedUp, 'the lookups finished while the gate was shut');
    assert.ok(seen.finds > 0, 'FINDs for the keys left');
    assert.equal(seen.stores, 0, 'no STORE before the gate');
    assert.ok(!done);
    for (const { key } of batch) {
      assert.ok(!heldAnywhere(t, key), `${key} held before the gate`);
      assert.ok(!writer.maintenance.published.has(key), `${key} republished before the gate`);
    }
    const finds = seen.finds;
    open();
    const res = await t.settle(put);
    for (const [i, r] of res.entries()) assert.ok(r.ok && r.replicas === 3, `${batch[i].key}: ${JSON.stringify(r)}`);
    assert.ok(seen.stores > 0);
    assert.equal(seen.finds, finds, 'no lookup again once the gate opened');
    for (const { key, value } of batch) {
      assert.equal(t.nodes.get(t.ownerOf(keyPosition(key)))?.store.get(key)?.value, value, key);
      assert.ok(writer.maintenance.published.has(key));
    }
  });

  it('a gate that rejects sends no STORE, publishes nothing and fails the put with its reason', async () => {
    const t = await ChordTestnet.create(24, { seed: 16, chord: { replicas: 3 } });
    const writer = t.liveNodes()[9];
    const batch = entries('grace', 11);
    const seen = watch(writer, batch);
    let fail = (_e: Error) => {};
    const gate = new Promise<void>((_, reject) => {
      fail = reject;
    });
    const put = writer.putMany(batch, 3_600_000, { storeAfter: gate });
    const outcome = put.then(
      () => 'resolved',
      (e: Error) => e.message,
    );
    // Fails while the lookups are still under way (some FINDs out, not all answered).
    await t.run(1);
    fail(new Error('claim not durable'));
    assert.equal(await t.settle(outcome), 'claim not durable');
    // Long enough for every lookup to end and for the maintenance to republish and re-try twice over.
    await t.run(60_000);
    assert.ok(seen.finds > 0, 'the lookups had started');
    assert.equal(seen.stores, 0, 'no STORE after a failed gate');
    for (const { key } of batch) {
      assert.ok(!heldAnywhere(t, key), `${key} stored`);
      assert.ok(!writer.maintenance.published.has(key), `${key} in the republish set`);
    }
  });

  it('a record another put published under its key while the gate was shut is made again one past it', async () => {
    const t = await ChordTestnet.create(12, { seed: 17, chord: { replicas: 3 } });
    const writer = t.liveNodes()[2];
    let open = () => {};
    const gate = new Promise<void>((r) => {
      open = r;
    });
    const gated = writer.putMany([{ key: 'heidi', value: 'second' }], 3_600_000, { storeAfter: gate });
    // An ungated put of the same key goes first (seq 0); the gated one, opened after it, must win (seq 1).
    assert.ok((await t.settle(writer.put('heidi', 'first', 3_600_000))).ok);
    open();
    const [r] = await t.settle(gated);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(writer.maintenance.published.get('heidi')?.record.seq, 1);
    const got = await t.settle(t.liveNodes()[8].get('heidi'));
    assert.ok(got.ok && got.value === 'second', JSON.stringify(got));
  });
});
