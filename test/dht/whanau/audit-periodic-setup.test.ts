/**
 * WhanauNode.startPeriodicSetup (seed 003 section 4.6): SETUP for epoch e
 * starts when UTC reaches e * p, once per period.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WhanauNode } from '../../../src/dht/whanau/node.ts';
import { defaultParams } from '../../../src/dht/whanau/params.ts';
import { makeNode, TestNet } from './harness.ts';

/** A node whose SETUP only records when and for which epoch it was started (at most `max` times). */
function recorder(startOffsetMs: number, max = 10) {
  const net = new TestNet();
  const node = makeNode(net, 1, defaultParams(4));
  const p = node.params.periodMs;
  net.clock.advance(startOffsetMs);
  const runs: { at: number; epoch: number }[] = [];
  (node as unknown as { setup: WhanauNode['setup'] }).setup = async (epoch = 0) => {
    runs.push({ at: net.clock.wallNow(), epoch });
    if (runs.length >= max) node.stopPeriodicSetup();
    return {};
  };
  return { net, node, p, runs };
}

describe('periodic SETUP', () => {
  it('from inside a period: at each boundary, with that epoch, once', () => {
    const { net, node, p, runs } = recorder(1234);
    const start = net.clock.wallNow();
    node.startPeriodicSetup();
    net.clock.runUntil(net.clock.now() + 3 * p);
    node.stopPeriodicSetup();
    const first = Math.ceil(start / p);
    assert.deepEqual(
      runs.map((r) => [r.at, r.epoch]),
      [0, 1, 2].map((i) => [(first + i) * p, first + i]),
    );
  });

  it('started exactly on a boundary: one SETUP for that epoch, the next one a period later', () => {
    const { net, node, p, runs } = recorder(0, 5);
    assert.equal(net.clock.wallNow() % p, 0, 'the simulated clock starts on a boundary');
    node.startPeriodicSetup();
    net.clock.runUntil(net.clock.now() + p);
    node.stopPeriodicSetup();
    const e = net.clock.wallNow() / p - 1;
    assert.deepEqual(
      runs.map((r) => r.epoch),
      [e, e + 1],
    );
  });
});
