/**
 * Finding the rest of the ring again: pockets of nodes that concurrent
 * joins left linked only among themselves (checkFromAfar), a successor list
 * that ran empty (closestLiveAfterSelf), and rings that a partition split,
 * merged again through the members each side lost (probeRemembered,
 * mergeThrough). Run from the maintenance tick.
 */
import type { NodeRef } from '../../rpc/types.ts';
import { compareFrom, inOpen } from '../store/ring-id.ts';
import type { ChordNode } from './chord-node.ts';
import { METHOD } from './messages.ts';
import { routeToOwnId } from './peer-calls.ts';

/**
 * The successor list ran empty (every entry failed): the closest node
 * after us that answers, among all we know of (nodes heard of lately,
 * fingers, the predecessor), becomes the successor. Falling back on the
 * nearest finger instead would skip every live node before it, and
 * stabilize would then walk back over them one tick per node.
 */
export async function closestLiveAfterSelf(n: ChordNode): Promise<NodeRef | null> {
  const known = new Map<string, NodeRef>();
  for (const r of [...n.guessHolders(n.id, 8), ...n.fingers.distinct(), ...(n.pred ? [n.pred] : [])])
    if (r.id !== n.id && !n.failures.failed(r.id)) known.set(r.id, r);
  const order = [...known.values()].sort((a, b) => compareFrom(n.id, a.id, b.id));
  for (const r of order.slice(0, 8)) {
    const reply = await n.call(r, METHOD.PING, {});
    if (reply !== null && n.sameNode(r, reply)) return r;
  }
  return null;
}

/**
 * Concurrent joins can leave pockets: runs of nodes linked among
 * themselves that the rest of the ring skips, a state stabilize alone
 * never repairs (Liben-Nowell et al., PODC 2002, "loopy" rings). Routing
 * to our own id from a far node shows where everyone else thinks our
 * slot is: a live node found between us and our successor is a better
 * successor; a node found past it is told about us (notify), so its
 * predecessor's stabilize links us in.
 */
export async function checkFromAfar(n: ChordNode): Promise<void> {
  const far = n.fingers.distinct().filter((r) => r.id !== n.successor.id);
  if (far.length === 0) return;
  const via = far[n.random.int(far.length)];
  const res = await routeToOwnId(n, via);
  const s = n.successor;
  if (!res.ok || res.owner.id === n.id || res.owner.id === s.id) return;
  const nx = await n.neighbors(res.owner, true);
  if (nx && inOpen(res.owner.id, n.id, s.id) && n.successor.id === s.id) {
    n.succs.adopt(res.owner, nx.succs);
    n.fingers.set(0, res.owner);
  }
}

/**
 * Probe the remembered members that are due (two per tick, four and
 * every one not probed lately when this node is alone); one that answers
 * at its id leads to a merge step (mergeThrough).
 */
export async function probeRemembered(n: ChordNode): Promise<void> {
  const alone = n.successor.id === n.id;
  for (const ref of n.remembered.due(n.clock.now(), alone ? 4 : 2, alone)) {
    if (n.stopped) return;
    n.counters.probes++;
    const reply = await n.call(ref, METHOD.PING, {});
    if (reply === null) {
      n.maintenance.pacing.probeMisses++;
      n.remembered.missed(ref.id, n.clock.now());
    } else if (!n.sameNode(ref, reply)) n.remembered.drop(ref.id);
    else {
      n.remembered.found(ref.id, n.clock.now());
      n.view.learn([ref]);
      n.maintenance.merged();
      await mergeThrough(n, ref);
    }
  }
}

/**
 * One step of ring unification (after Shafaat et al., "Dealing with
 * network partitions in structured overlay networks", 2009): route to our
 * own id starting at `via`, which may belong to another ring. The owner o
 * found there is our successor in via's ring. If o lies between us and
 * our successor, it is a closer successor in the union of both rings and
 * we take it; otherwise o is told about us (notify), and if we lie between
 * o's predecessor and o, o's predecessor links us in at its next stabilize.
 *
 * Why the rings become one: a successor pointer only ever moves closer to
 * its node (here, in stabilize and in checkFromAfar) except when its
 * target fails, so it cannot oscillate. After the heal every node that
 * lost members of the other side probes them and takes its successor in
 * the other ring when that is closer; each such change is passed one node
 * back by notify and stabilize, which is how the two successor chains
 * interleave; nodes that remember nobody across are reached by that
 * propagation and by checkFromAfar, whose lookups cross into the other
 * ring as soon as any finger points there. Each node's successor reaches
 * the true one after finitely many improvements, and the rings are one.
 */
export async function mergeThrough(n: ChordNode, via: NodeRef): Promise<void> {
  const res = await routeToOwnId(n, via);
  if (!res.ok || res.owner.id === n.id) return;
  const o = res.owner;
  const s = n.successor;
  if (o.id === s.id) return;
  const nx = await n.neighbors(o, true);
  if (!nx) return;
  if (n.successor.id === s.id && (s.id === n.id || inOpen(o.id, n.id, s.id))) {
    n.succs.adopt(o, nx.succs);
    n.fingers.set(0, o);
    n.counters.merges++;
    n.maintenance.merged();
    n.log.warn(
      { via: via.id.slice(0, 8), successor: o.id.slice(0, 8) },
      'found a closer successor through a member it had lost: merging rings',
    );
  }
}
