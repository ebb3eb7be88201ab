import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { defaultParams } from '../../../src/dht/whanau/params.ts';
import type { WhanauNode } from '../../../src/dht/whanau/node.ts';
import { preferentialAttachment } from '../../../src/sim/social-graph.ts';
import { SeededRandom } from '../../../src/util/random.ts';
import { percentile } from '../../../src/util/stats.ts';
import { makeNode, TestNet } from './harness.ts';

function network(n: number, seed: number) {
  const net = new TestNet();
  // A 200-node preferential-attachment graph mixes in about 4 steps; shorter walks keep the test quick.
  const params = defaultParams(n, { w: 4 });
  const nodes: WhanauNode[] = [];
  for (let i = 0; i < n; i++) nodes.push(makeNode(net, i, params));
  const rnd = new SeededRandom(seed);
  const e = preferentialAttachment(n, 5, rnd);
  for (let k = 0; k < e.count; k++) {
    nodes[e.a[k]].addPeer(nodes[e.b[k]].self);
    nodes[e.b[k]].addPeer(nodes[e.a[k]].self);
  }
  const keys: string[] = [];
  for (const node of nodes) {
    const value = rnd.bytes(24);
    const key = createHash('sha1').update(value).digest('hex');
    node.publish({ key, value });
    keys.push(key);
  }
  return { net, nodes, keys, params, rnd };
}

describe('WhanauNode: 200 nodes in memory', () => {
  it('after SETUP every honest key is found, median messages per lookup at most 2', async () => {
    const { net, nodes, keys, rnd } = network(200, 7);
    const epoch = nodes[0].nextEpoch();
    await net.until(Promise.all(nodes.map((n) => n.setup(epoch))));
    for (const n of nodes) assert.equal(n.published?.epoch, epoch);
    const messages: number[] = [];
    const lookups = keys.map((key) => nodes[rnd.int(nodes.length)].lookup(key).then((r) => ({ key, r })));
    const results = await net.until(Promise.all(lookups));
    for (const { key, r } of results) {
      assert.ok(r.value !== null, `key ${key} not found after ${r.tries} tries`);
      assert.equal(createHash('sha1').update(r.value).digest('hex'), key);
      messages.push(r.messages);
    }
    assert.ok(percentile(messages, 50) <= 2, `median ${percentile(messages, 50)}`);
  });
});
