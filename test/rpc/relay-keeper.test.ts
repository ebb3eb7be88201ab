import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRelayAddr } from '../../src/rpc/relay.ts';
import { keepRelays, RELAY_MISSES, type RelayRegistrar } from '../../src/rpc/relay-keeper.ts';
import type { NodeRef, RpcEndpoint } from '../../src/rpc/types.ts';
import { SimClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';

/**
 * The relays a node behind a NAT keeps (rpc/relay-keeper.ts, shared by ring clients and WhanauSIP nodes), on a
 * simulated clock: which nodes agree to relay is scripted, so every renewal, miss and replacement is seen.
 */
const ref = (n: number): NodeRef => ({ id: `n${n}`, addr: `10.0.0.${n}:7000`, key: new Uint8Array(32).fill(n) });

function harness(agreeing: Set<number>) {
  const asked: number[] = [];
  const relay: RelayRegistrar = {
    serving: true,
    registerWith: async (r) => {
      asked.push(r.key[0]);
      return agreeing.has(r.key[0]);
    },
  };
  let closed = 0;
  const endpoint = {
    self: { id: 'me', addr: '192.168.1.5:7000', key: new Uint8Array(32).fill(99) },
    closeLinks: () => {
      closed++;
    },
  } as unknown as RpcEndpoint & { closeLinks(): void };
  return { relay, endpoint, asked, closedLinks: () => closed };
}

const named = (addr: string) => {
  const p = parseRelayAddr(addr);
  assert.ok(p.ok, addr);
  return p.value.map((r) => r.key[0]);
};

/** Let the renewal's awaited registrations settle. */
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

describe('keepRelays', () => {
  it('keeps the first `want` candidates that agree, names them, stops relaying for others, reopens links', async () => {
    const h = harness(new Set([2, 3, 5]));
    const kept = await keepRelays({
      endpoint: h.endpoint,
      relay: h.relay,
      candidates: [ref(1), ref(2), ref(3), ref(4), ref(5)],
      want: 2,
      clock: new SimClock(),
      log: silentLogger,
    });
    assert.ok(kept);
    assert.deepEqual(named(h.endpoint.self.addr), [2, 3]);
    assert.equal(h.relay.serving, false);
    assert.equal(h.closedLinks(), 1);
    kept.stop();
  });

  it('none agreeing gives null and leaves the address as it was', async () => {
    const h = harness(new Set());
    const kept = await keepRelays({
      endpoint: h.endpoint,
      relay: h.relay,
      candidates: [ref(1), ref(2)],
      want: 3,
      clock: new SimClock(),
      log: silentLogger,
    });
    assert.equal(kept, null);
    assert.equal(h.endpoint.self.addr, '192.168.1.5:7000');
  });

  it(`replaces a relay after ${RELAY_MISSES} missed renewals (members first), not after one, and says so`, async () => {
    const agreeing = new Set([1, 2, 3, 7]);
    const h = harness(agreeing);
    const clock = new SimClock();
    const kept = await keepRelays({
      endpoint: h.endpoint,
      relay: h.relay,
      candidates: [ref(1), ref(2), ref(3), ref(4)],
      want: 2,
      clock,
      log: silentLogger,
      renewMs: 1000,
    });
    assert.ok(kept);
    let changes = 0;
    kept.onChange = () => changes++;
    // A member learned since start (e.g. from the ring's routing hints, or a friend resolved later).
    kept.members = () => [ref(2), ref(7)];
    assert.deepEqual(named(h.endpoint.self.addr), [1, 2]);
    clock.advance(1000);
    await settle();
    assert.deepEqual(named(h.endpoint.self.addr), [1, 2], 'renewed, nothing changed');
    agreeing.delete(1);
    clock.advance(1000);
    await settle();
    assert.deepEqual(named(h.endpoint.self.addr), [1, 2], 'one miss is forgiven');
    assert.equal(changes, 0);
    clock.advance(1000);
    await settle();
    // Node 2 is already a relay, so member 7 takes node 1's place, in the same position.
    assert.deepEqual(named(h.endpoint.self.addr), [7, 2]);
    assert.deepEqual(
      kept.relays.map((r) => r.key[0]),
      [7, 2],
    );
    assert.equal(changes, 1);
    // Renewals go on with the new set; a relay answering again resets its count.
    h.asked.length = 0;
    clock.advance(1000);
    await settle();
    assert.deepEqual(h.asked, [7, 2]);
    kept.stop();
    h.asked.length = 0;
    clock.advance(5000);
    await settle();
    assert.deepEqual(h.asked, [], 'stopped: no more renewals');
  });

  it('a relay that cannot be replaced is kept (and renewed) rather than dropped', async () => {
    const agreeing = new Set([1]);
    const h = harness(agreeing);
    const clock = new SimClock();
    const kept = await keepRelays({
      endpoint: h.endpoint,
      relay: h.relay,
      candidates: [ref(1), ref(2)],
      want: 1,
      clock,
      log: silentLogger,
      renewMs: 1000,
    });
    assert.ok(kept);
    let changes = 0;
    kept.onChange = () => changes++;
    agreeing.clear();
    for (let i = 0; i < 4; i++) {
      clock.advance(1000);
      await settle();
    }
    assert.deepEqual(named(h.endpoint.self.addr), [1]);
    assert.equal(changes, 0);
    // Candidate 2 agrees now: the next renewal round replaces the silent relay.
    agreeing.add(2);
    clock.advance(1000);
    await settle();
    assert.deepEqual(named(h.endpoint.self.addr), [2]);
    assert.equal(changes, 1);
    kept.stop();
  });
});
