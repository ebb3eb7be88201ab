/**
 * A LOOKUP's random walk on cold walk caches (seed 003 section 4.4), as right
 * after SETUP, whose walks carry their questions and leave the caches empty:
 * its cost is one request per hop for each walk fetched, not a refill at every
 * node it passes through (which grew into thousands of walk requests across
 * the network for the first lookups after SETUP).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WhanauNode } from '../../../src/dht/whanau/node.ts';
import { defaultParams } from '../../../src/dht/whanau/params.ts';
import { preferentialAttachment } from '../../../src/sim/social-graph.ts';
import { SeededRandom } from '../../../src/util/random.ts';
import { makeNode, TestNet } from './harness.ts';

describe('RandomWalkCache on cold caches, 200 nodes in memory', () => {
  it('one walk of length w costs at most (1 + refill) * w requests', async () => {
    const net = new TestNet();
    const n = 200;
    const params = defaultParams(n);
    const nodes: WhanauNode[] = [];
    for (let i = 0; i < n; i++) nodes.push(makeNode(net, i, params));
    const e = preferentialAttachment(n, 5, new SeededRandom(3));
    for (let k = 0; k < e.count; k++) {
      nodes[e.a[k]].addPeer(nodes[e.b[k]].self);
      nodes[e.b[k]].addPeer(nodes[e.a[k]].self);
    }
    await net.until(Promise.all(nodes.map((x) => x.refreshPeers())));
    for (const x of nodes) assert.ok(x.activePeers().length > 0);
    const u = nodes[17];
    const before = net.messages;
    const [end] = await net.until(u.walks.take(1, params.w));
    assert.ok(end, 'a walk came back');
    const sent = net.messages - before;
    const bound = (1 + u.walks.refill) * params.w;
    assert.ok(sent <= bound, `${sent} requests for one walk of length ${params.w} (bound ${bound})`);
    assert.equal(u.walks.size(params.w), u.walks.refill, 'the looking-up node keeps its refill');
    const requested = nodes.reduce((s, x) => s + x.walks.walksRequested, 0);
    assert.ok(requested <= bound, `${requested} walks requested in all`);
  });
});
