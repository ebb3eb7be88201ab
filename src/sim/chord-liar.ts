import type { ChordNode } from '../dht/chord/chord-node.ts';
import { decodeFindRequest, decodeNeighborsRequest, METHOD } from '../dht/chord/messages.ts';
import type { NodeRef } from '../rpc/types.ts';
import type { Random } from '../util/random.ts';

/**
 * The lying node of the security experiment: it keeps the ring going
 * (stabilize, notify and storage are answered honestly) but answers
 * lookups with wrong next hops. Each liar lies on its own (no collusion):
 *  - half of its FIND answers claim the owner's successor is the owner
 *    (the plausible lie: skip exactly one node), the other half name
 *    random real nodes as next hops and successors;
 *  - a confirmation query (NEIGHBORS without notify) gets a random real
 *    node as predecessor.
 * `oracle` gives the liar the true ring, the strongest knowledge a single
 * node could gather.
 */
export interface LiarOracle {
  /** The ids after `pos` on the true ring, owner first. */
  successorsOf(pos: string, count: number): NodeRef[];
  randomRefs(count: number): NodeRef[];
}

export function makeLiar(node: ChordNode, oracle: LiarOracle, random: Random): void {
  node.endpoint.onRequest((method, payload, caller) => {
    if (method === METHOD.FIND) {
      const req = decodeFindRequest(payload);
      if (req.ok && random.next() < 0.5) {
        const succs = oracle.successorsOf(req.value.target, node.r + 1).slice(1);
        return { succs, next: [] };
      }
      if (req.ok) return { succs: oracle.randomRefs(node.r), next: oracle.randomRefs(3) };
    }
    if (method === METHOD.NEIGHBORS) {
      const req = decodeNeighborsRequest(payload);
      if (req.ok && !req.value.notify) {
        node.handleRequest(method, payload, caller);
        return { pred: oracle.randomRefs(1)[0] ?? null, succs: oracle.randomRefs(node.r) };
      }
    }
    return node.handleRequest(method, payload, caller);
  });
}
