/**
 * A caller's timeout on the in-memory network must not depend on the callee:
 * the TLS endpoint rejects with RPC_TIMEOUT after `timeoutMs` whatever the
 * handler does, and tests of timeouts (the adapter's 408) rely on the
 * in-memory network behaving the same.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryNetwork } from '../../src/rpc/memory-network.ts';
import type { NodeRef } from '../../src/rpc/types.ts';
import { SimClock } from '../../src/util/clock.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { SeededRandom } from '../../src/util/random.ts';

const ref = (i: number): NodeRef => ({
  id: i.toString(16).padStart(40, '0'),
  addr: `n${i}`,
  key: new Uint8Array(32).fill(i),
});

function setup() {
  const clock = new SimClock();
  const net = new MemoryNetwork({ clock, random: new SeededRandom(3) }, { latencyMs: 10, timeoutMs: 500 });
  const a = net.endpoint(ref(1));
  const b = net.endpoint(ref(2));
  return { clock, net, a, b };
}

/** How a request has ended so far: 'pending', { ok: value }, or the error. */
function track(p: Promise<unknown>): () => unknown {
  let result: unknown = 'pending';
  p.then(
    (v) => {
      result = { ok: v };
    },
    (e: unknown) => {
      result = e;
    },
  );
  return () => result;
}

describe('MemoryNetwork timeouts do not depend on the callee', () => {
  it('a handler that answers after the timeout: the caller gets RPC_TIMEOUT at timeoutMs', async () => {
    const { clock, net, a, b } = setup();
    b.onRequest(() => new Promise((r) => clock.setTimer(2000, () => r('late'))));
    const r = track(a.request(ref(2), 'slow', 1));
    await net.run(600);
    assert.ok(isOverlayError(r(), 'RPC_TIMEOUT'), `at 600 ms (timeoutMs 500) the request is ${String(r())}`);
  });

  it('a handler that never settles: the caller still gets RPC_TIMEOUT at timeoutMs', async () => {
    const { net, a, b } = setup();
    b.onRequest(() => new Promise(() => {}));
    const r = track(a.request(ref(2), 'hang', 1));
    await net.run(5000);
    assert.ok(isOverlayError(r(), 'RPC_TIMEOUT'), `after 10 x timeoutMs the request is ${String(r())}`);
  });

  it('a killed callee: RPC_TIMEOUT at timeoutMs (this already holds)', async () => {
    const { net, a, b } = setup();
    b.onRequest(() => 1);
    net.kill('n2');
    const r = track(a.request(ref(2), 'x', 1));
    await net.run(499);
    assert.equal(r(), 'pending');
    await net.run(2);
    assert.ok(isOverlayError(r(), 'RPC_TIMEOUT'), String(r()));
  });
});
