import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import { planFromView, warmView } from '../../../src/dht/chord/direct-fetch.ts';
import { METHOD } from '../../../src/dht/chord/messages.ts';
import { keyPosition } from '../../../src/dht/store/ring-id.ts';
import { defaultValidator, type RecordValidator } from '../../../src/dht/store/validators.ts';
import { ChordTestnet } from '../../../src/sim/chord-testnet.ts';

/** Records whose value says it is genuine: what a signature check would decide, reduced to a prefix. */
const base = defaultValidator();
const genuineOnly: RecordValidator = {
  validate: (r, now) => base.validate(r, now) ?? (String(r.value).startsWith('genuine:') ? null : 'not genuine'),
  select: base.select,
};

const keysOf = (u: string) => [u, ...Array.from({ length: 8 }, (_, i) => `${u}.${i + 1}`)];

/** Count the RPC methods a node sends, and the targets of its FINDs. */
function spy(node: ChordNode): { sent: Map<string, number>; finds: string[] } {
  const sent = new Map<string, number>();
  const finds: string[] = [];
  const ep = node.endpoint;
  const request = ep.request.bind(ep);
  ep.request = (to, method, payload, opts) => {
    sent.set(method, (sent.get(method) ?? 0) + 1);
    if (method === METHOD.FIND) finds.push((payload as { target: string }).target);
    return request(to, method, payload, opts);
  };
  return { sent, finds };
}

describe('direct reads from the guessed holders (getManyDirect)', () => {
  let t: ChordTestnet;
  let reader: ChordNode;
  before(async () => {
    t = await ChordTestnet.create(24, { seed: 31, chord: { replicas: 3, store: { validators: { '': genuineOnly } } } });
    const writer = t.liveNodes()[3];
    for (const u of ['ann', 'ben', 'cat', 'dan'])
      for (const k of keysOf(u)) assert.ok((await t.settle(writer.put(k, `genuine:${k}`, 3_600_000))).ok, k);
    await t.run(5000);
    reader = t.liveNodes()[17];
  });

  it('reads every key with fewer FETCHes than keys, routing only the keys the view places wrong', async () => {
    const keys = keysOf('ben');
    // The first read starts the view from the routing table; the lookups it needs teach it more.
    await t.settle(reader.getManyDirect(keys));
    // Keys whose guessed holder does not hold them (the view does not know every node) go the routed way.
    const misplaced = planFromView(reader, keys).flatMap((a) =>
      a.keys.filter((k) => !(t.nodes.get(a.to.id) as ChordNode).store.get(k)),
    );
    assert.ok(misplaced.length < keys.length / 2, `${misplaced.length} keys placed wrong`);
    const { sent, finds } = spy(reader);
    const got = await t.settle(reader.getManyDirect(keys));
    // The maintenance tick may send FINDs meanwhile, but none for a key the view places right.
    const routed = new Set(misplaced.map(keyPosition));
    const positions = new Set(keys.map(keyPosition));
    assert.deepEqual(
      finds.filter((x) => positions.has(x) && !routed.has(x)),
      [],
      'no FIND for a key placed right',
    );
    const fetches = sent.get(METHOD.FETCH) ?? 0;
    assert.ok(got.messages >= fetches);
    if (misplaced.length === 0) assert.equal(got.messages, fetches);
    assert.ok(fetches >= 1 && fetches < keys.length, `${fetches} FETCHes for ${keys.length} keys`);
    for (const k of keys) assert.equal(got.found.get(k)?.value, `genuine:${k}`, k);
  });

  it('tells each record as it is accepted', async () => {
    const told: string[] = [];
    const got = await t.settle(reader.getManyDirect(keysOf('ann'), { onRecord: (k) => told.push(k) }));
    assert.deepEqual(told.sort(), [...got.found.keys()].sort());
    assert.equal(told.length, keysOf('ann').length);
  });

  it("accepts only what the node's validator accepts, and finds the genuine record another way", async () => {
    const keys = keysOf('cat');
    const plan = planFromView(reader, keys).filter((a) => a.to.id !== reader.id);
    const liar = t.nodes.get(plan[0].to.id) as ChordNode;
    const orig = liar.handleRequest.bind(liar);
    let lied = 0;
    liar.handleRequest = (m, p, c) => {
      if (m !== METHOD.FETCH) return orig(m, p, c);
      lied++;
      const now = t.clock.wallNow();
      const ks = (p as { keys: string[] }).keys;
      return {
        records: ks.map((key) => ({ key, value: 'forged', created: now, ttlMs: 60_000, seq: 9, publisher: liar.id })),
      };
    };
    try {
      const got = await t.settle(reader.getManyDirect(keys));
      assert.ok(lied > 0, 'the liar was asked');
      for (const k of keys) {
        const v = got.found.get(k)?.value;
        // Only the liar's own keys may be missing (it is asked again as their owner); nothing forged is taken.
        if (t.ownerOf(keyPosition(k)) === liar.id && v === undefined) continue;
        assert.equal(v, `genuine:${k}`, k);
      }
      // What the direct read leaves out, the confirmed get finds at the replicas.
      const missing = keys.filter((k) => !got.found.has(k));
      for (const [k, r] of await t.settle(reader.getMany(missing))) assert.equal(r.ok && r.value, `genuine:${k}`, k);
    } finally {
      liar.handleRequest = orig;
    }
  });

  it('leaves out keys nobody holds', async () => {
    const got = await t.settle(reader.getManyDirect(['nobody', 'nobody.1', 'dan']));
    assert.deepEqual([...got.found.keys()], ['dan']);
  });

  it('forgets a guessed holder that does not answer, within the patience, and still finds every key', async () => {
    const keys = keysOf('dan');
    const asked = planFromView(reader, keys).map((a) => a.to.id);
    const victim = asked.find((id) => id !== reader.id) as string;
    t.kill(victim);
    const started = t.clock.now();
    const got = await t.settle(reader.getManyDirect(keys, { patienceMs: 300 }));
    // A silent holder costs the patience, not a whole RPC timeout (1000 ms here), of simulated time.
    assert.ok(t.clock.now() - started < 1000, `took ${t.clock.now() - started} ms`);
    for (const k of keys) assert.equal(got.found.get(k)?.value, `genuine:${k}`, k);
    assert.notEqual(reader.view.holders(victim, 1)[0].id, victim, 'dropped from the view');
  });
});

describe('starting the ring view before the first read (warmView)', () => {
  it('learns the ring from one batch of spread lookups, so that the first reads find their holders', async () => {
    const t = await ChordTestnet.create(48, { seed: 7, chord: { replicas: 3 } });
    const [warm, cold] = [t.liveNodes()[5], t.liveNodes()[30]];
    const { finds } = spy(warm);
    await t.settle(warmView(warm, 16));
    const ids = t
      .liveNodes()
      .map((n) => n.id)
      .sort();
    const owner = (pos: string) => ids.find((id) => id >= pos) ?? ids[0];
    const positions = Array.from({ length: 60 }, (_, i) => keyPosition(`user${i}`));
    const right = (n: ChordNode) => positions.filter((p) => n.guessHolders(p, 1)[0]?.id === owner(p)).length;
    // Read before its first guess, the dormant view holds only the last few nodes it heard of.
    assert.ok(cold.view.size <= 32, `dormant view of ${cold.view.size}`);
    assert.ok(warm.view.size >= ids.length - 4, `started view of ${warm.view.size} of ${ids.length}`);
    assert.ok(right(warm) >= 57, `${right(warm)} of 60 owners guessed right`);
    assert.ok(finds.length <= 48, `${finds.length} FINDs`);
  });
});
