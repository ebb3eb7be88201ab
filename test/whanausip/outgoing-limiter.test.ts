import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeRef } from '../../src/rpc/types.ts';
import { OutgoingLimiter } from '../../src/whanausip/outgoing-limiter.ts';

const to: NodeRef = { id: '0'.repeat(40), addr: 'x:1', key: new Uint8Array(32) };

describe('OutgoingLimiter', () => {
  it('keeps at most max capped requests in flight, in order, and never holds back walk steps', async () => {
    const open: { method: string; done: (v: unknown) => void }[] = [];
    let peak = 0;
    let inFlight = 0;
    const inner = {
      request: (_to: NodeRef, method: string) =>
        new Promise((resolve) => {
          if (method !== 'whanau.walk') peak = Math.max(peak, ++inFlight);
          open.push({
            method,
            done: (v) => {
              if (method !== 'whanau.walk') inFlight--;
              resolve(v);
            },
          });
        }),
    };
    const lim = new OutgoingLimiter(inner, 2, new Set(['whanau.walk']));
    const capped = [1, 2, 3, 4, 5].map((k) => lim.request(to, 'whanau.getId', { k }));
    const walk = lim.request(to, 'whanau.walk', {});
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      open.map((o) => o.method),
      ['whanau.getId', 'whanau.getId', 'whanau.walk'],
    );
    assert.equal(lim.queued, 3);
    open.find((o) => o.method === 'whanau.walk')?.done('w');
    assert.equal(await walk, 'w');
    for (let k = 0; k < 5; k++) {
      const next = open.find((o) => o.method === 'whanau.getId');
      assert.ok(next);
      open.splice(open.indexOf(next), 1);
      next.done(k);
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await Promise.all(capped), [0, 1, 2, 3, 4]);
    assert.equal(peak, 2);
  });
});
