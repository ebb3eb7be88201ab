import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryNetwork } from '../../src/rpc/memory-network.ts';
import type { NodeRef } from '../../src/rpc/types.ts';
import { SimClock } from '../../src/util/clock.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { SeededRandom } from '../../src/util/random.ts';

function ref(i: number, key = new Uint8Array(32).fill(i)): NodeRef {
  return { id: i.toString(16).padStart(40, '0'), addr: `n${i}`, key };
}

function setup(init: ConstructorParameters<typeof MemoryNetwork>[1] = {}) {
  const clock = new SimClock();
  const net = new MemoryNetwork({ clock, random: new SeededRandom(7) }, { latencyMs: 10, timeoutMs: 500, ...init });
  const a = net.endpoint(ref(1));
  const b = net.endpoint(ref(2));
  b.onRequest((method, payload, caller) => ({ method, payload, from: caller.addr }));
  return { clock, net, a, b };
}

async function settle<T>(net: MemoryNetwork, p: Promise<T>, ms = 5000): Promise<T> {
  let done = false;
  const out = p.finally(() => {
    done = true;
  });
  out.catch(() => {});
  await net.runUntil(() => done, ms);
  return out;
}

describe('MemoryNetwork', () => {
  it('delivers a request and its response after two one-way latencies, as a copy', async () => {
    const { clock, net, a } = setup();
    const payload = { x: [1, 2], b: new Uint8Array([9]) };
    const res = (await settle(net, a.request(ref(2), 'echo', payload))) as { payload: typeof payload; from: string };
    assert.equal(clock.now(), 20);
    assert.deepEqual(res.payload, payload);
    assert.notEqual(res.payload, payload);
    assert.equal(res.from, 'n1');
    assert.equal(a.stats.requestsSent, 1);
    assert.equal(a.stats.responsesOk, 1);
  });

  it('times out on a killed node and works again after revive', async () => {
    const { clock, net, a } = setup();
    net.kill('n2');
    await assert.rejects(settle(net, a.request(ref(2), 'echo', 1)), (e) => isOverlayError(e, 'RPC_TIMEOUT'));
    assert.equal(clock.now(), 500);
    assert.equal(a.stats.timeouts, 1);
    net.revive('n2');
    assert.ok(await settle(net, a.request(ref(2), 'echo', 1)));
  });

  it('refuses unknown addrs, mismatched keys, and reports handler errors as RPC_REFUSED', async () => {
    const { net, a, b } = setup();
    await assert.rejects(settle(net, a.request(ref(9), 'x', 1)), (e) => isOverlayError(e, 'RPC_UNREACHABLE'));
    const wrongKey = { ...ref(2), key: new Uint8Array(32).fill(77) };
    await assert.rejects(settle(net, a.request(wrongKey, 'x', 1)), (e) => isOverlayError(e, 'RPC_PEER_KEY_MISMATCH'));
    b.onRequest(() => {
      throw new Error('nope');
    });
    await assert.rejects(settle(net, a.request(ref(2), 'x', 1)), (e) => isOverlayError(e, 'RPC_REFUSED'));
    b.onRequest(async () => {
      throw new Error('async nope');
    });
    await assert.rejects(settle(net, a.request(ref(2), 'x', 1)), /async nope/);
  });

  it('cuts partitions and heals them', async () => {
    const { net, a } = setup();
    net.partition(['n1'], ['n2']);
    await assert.rejects(settle(net, a.request(ref(2), 'x', 1)), (e) => isOverlayError(e, 'RPC_TIMEOUT'));
    net.heal();
    assert.ok(await settle(net, a.request(ref(2), 'x', 1)));
  });

  it('applies per-link latency overrides and jitter within bounds', async () => {
    const { clock, net, a } = setup({ jitterMs: 4 });
    net.setLinkLatency('n1', 'n2', 100);
    await settle(net, a.request(ref(2), 'x', 1));
    assert.equal(clock.now(), 200);
    const c = net.endpoint(ref(3));
    c.onRequest(() => 'ok');
    const t0 = clock.now();
    await settle(net, a.request(ref(3), 'x', 1));
    const rtt = clock.now() - t0;
    assert.ok(rtt >= 20 && rtt <= 28, `rtt ${rtt}`);
  });

  it('loses messages at the configured rate (seeded) and counts CBOR bytes', async () => {
    const { net, a } = setup({ lossRate: 0.5, copy: 'cbor' });
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, () => settle(net, a.request(ref(2), 'x', { k: 'v' }))),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    // Both legs must survive: about a quarter succeed.
    assert.ok(ok > 20 && ok < 90, `ok ${ok}`);
    assert.ok(net.stats.lost > 0);
    assert.ok(net.stats.bytes > 0);
  });

  it('refuses a second key at an addr that is in use', () => {
    const { net } = setup();
    assert.throws(() => net.endpoint({ ...ref(1), key: new Uint8Array(32).fill(5) }), /already used/);
  });
});
