/**
 * What the partition and adaptive-stabilization tests share: a ring of
 * Chord nodes on the simulated network with short links, the check that
 * it is one ring, and cutting it into two halves.
 */
import type { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import type { ChordInit } from '../../../src/dht/chord/chord-types.ts';
import { ChordTestnet } from '../../../src/sim/chord-testnet.ts';

/** Links of 2 ms (±1), a 1 s RPC timeout. */
export const SHORT_LINKS = { latencyMs: 2, jitterMs: 1, resolutionMs: 1, timeoutMs: 1000 };

/** A ring of n nodes on SHORT_LINKS, joined and left to stabilize for `settleMs`. */
export function ringOf(n: number, seed: number, chord: ChordInit, settleMs: number): Promise<ChordTestnet> {
  return ChordTestnet.create(n, { seed, chord, network: SHORT_LINKS }, settleMs);
}

/** Live nodes whose successor is not the next live id: 0 when the ring is one ring. */
export function wrongSuccessors(t: ChordTestnet): number {
  const ids = t.liveIds();
  return ids.filter((id, i) => (t.nodes.get(id) as ChordNode).successor.id !== ids[(i + 1) % ids.length]).length;
}

/** Simulated ms until every successor is right (checked every 500 ms), or -1 after `limitMs`. */
export async function msToOneRing(t: ChordTestnet, limitMs: number): Promise<number> {
  for (let ms = 0; ms <= limitMs; ms += 500) {
    if (wrongSuccessors(t) === 0) return ms;
    await t.run(500);
  }
  return -1;
}

/** Cut the network between the nodes `inA` picks (by index in ring order) and the rest; returns both sides. */
export function cutInTwo(t: ChordTestnet, inA: (i: number) => boolean): { a: ChordNode[]; b: ChordNode[] } {
  const nodes = t.liveNodes();
  const a = nodes.filter((_, i) => inA(i));
  const b = nodes.filter((_, i) => !inA(i));
  t.net.partition(
    a.map((n) => n.self.addr),
    b.map((n) => n.self.addr),
  );
  return { a, b };
}

/** Every node of side a has its successor on side a, and every node of b on b: each side is a ring of its own. */
export function sidesApart(a: readonly ChordNode[], b: readonly ChordNode[]): boolean {
  const side = new Set(a.map((n) => n.id));
  return a.every((n) => side.has(n.successor.id)) && b.every((n) => !side.has(n.successor.id));
}
