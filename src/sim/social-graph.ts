import type { BulkGraph } from './whanau-bulk.ts';
import type { Random } from '../util/random.ts';

/**
 * Synthetic social graphs for the Whanau simulator: a fast-mixing honest
 * region grown by preferential attachment (Barabasi-Albert: each new node links
 * to m distinct earlier nodes chosen with probability proportional to degree,
 * mean degree about 2m), and a Sybil region joined to it by attack edges.
 * Every link is mutual (both sides added each other), so the graph is undirected.
 */

/** Undirected edge list: edge k joins a[k] and b[k]. */
export interface EdgeList {
  a: Int32Array;
  b: Int32Array;
  count: number;
}

function growEdges(cap: number): EdgeList {
  return { a: new Int32Array(cap), b: new Int32Array(cap), count: 0 };
}

function addEdge(e: EdgeList, x: number, y: number): void {
  if (e.count === e.a.length) {
    const a = new Int32Array(e.a.length * 2 + 16);
    const b = new Int32Array(e.b.length * 2 + 16);
    a.set(e.a);
    b.set(e.b);
    e.a = a;
    e.b = b;
  }
  e.a[e.count] = x;
  e.b[e.count] = y;
  e.count++;
}

/** Preferential attachment over nodes [0, n): a clique of m+1 nodes, then each node adds m links. */
export function preferentialAttachment(n: number, m: number, rnd: Random, edges = growEdges(n * m)): EdgeList {
  const seed = Math.min(n, m + 1);
  for (let x = 0; x < seed; x++) for (let y = x + 1; y < seed; y++) addEdge(edges, x, y);
  // Every edge end appears once in `ends`: picking a uniform entry picks a node proportionally to degree.
  const ends = new Int32Array(2 * (edges.count + n * m) + 2);
  let ne = 0;
  for (let k = 0; k < edges.count; k++) {
    ends[ne++] = edges.a[k];
    ends[ne++] = edges.b[k];
  }
  const chosen = new Int32Array(m);
  for (let v = seed; v < n; v++) {
    let c = 0;
    while (c < Math.min(m, v)) {
      const x = ne > 0 ? ends[rnd.int(ne)] : rnd.int(v);
      let dup = false;
      for (let k = 0; k < c; k++) if (chosen[k] === x) dup = true;
      if (!dup) chosen[c++] = x;
    }
    for (let k = 0; k < c; k++) {
      addEdge(edges, v, chosen[k]);
      ends[ne++] = v;
      ends[ne++] = chosen[k];
    }
  }
  return edges;
}

export interface SocialGraphSpec {
  honest: number;
  sybils: number;
  attackEdges: number;
  /** Links each new node makes (mean degree about 2m). */
  m?: number;
}

export interface SocialGraph extends BulkGraph {
  honest: number;
  sybils: number;
  attackEdges: number;
  meanHonestDegree: number;
}

/** Compressed sparse rows from an edge list (both directions). */
export function toCsr(nodes: number, e: EdgeList): BulkGraph {
  const deg = new Int32Array(nodes + 1);
  for (let k = 0; k < e.count; k++) {
    deg[e.a[k]]++;
    deg[e.b[k]]++;
  }
  const offsets = new Int32Array(nodes + 1);
  for (let u = 0; u < nodes; u++) offsets[u + 1] = offsets[u] + deg[u];
  const fill = offsets.slice(0, nodes);
  const adj = new Int32Array(offsets[nodes]);
  for (let k = 0; k < e.count; k++) {
    adj[fill[e.a[k]]++] = e.b[k];
    adj[fill[e.b[k]]++] = e.a[k];
  }
  return { nodes, offsets, adj };
}

/**
 * Honest nodes are [0, honest), Sybils [honest, honest + sybils). The Sybil
 * region is itself a preferential-attachment graph (the attacker may link its
 * identities any way it likes); each attack edge joins a uniformly chosen
 * honest node to a uniformly chosen Sybil.
 */
export function buildSocialGraph(spec: SocialGraphSpec, rnd: Random): SocialGraph {
  const m = spec.m ?? 5;
  const { honest, sybils, attackEdges } = spec;
  if (attackEdges > 0 && sybils === 0) throw new RangeError('attack edges need at least one Sybil');
  const edges = preferentialAttachment(honest, m, rnd);
  const honestEdges = edges.count;
  if (sybils > 0) {
    const sy = preferentialAttachment(sybils, Math.min(m, Math.max(1, sybils - 1)), rnd);
    for (let k = 0; k < sy.count; k++) addEdge(edges, honest + sy.a[k], honest + sy.b[k]);
  }
  for (let k = 0; k < attackEdges; k++) addEdge(edges, rnd.int(honest), honest + rnd.int(sybils));
  const g = toCsr(honest + sybils, edges);
  return {
    ...g,
    honest,
    sybils,
    attackEdges,
    meanHonestDegree: honest > 0 ? (2 * honestEdges + attackEdges) / honest : 0,
  };
}
