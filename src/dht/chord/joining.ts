/**
 * How a Chord node takes its place on the ring (Stoica et al. 2003, section
 * IV-E), as a member or as a client, takes it up again after a crash, and
 * hands its place over when it leaves (section V-C). The node's own timers
 * are in tick-timer.ts; these are the messages.
 */
import type { NodeRef } from '../../rpc/types.ts';
import { OverlayError } from '../../util/errors.ts';
import { compareFrom } from '../store/ring-id.ts';
import type { ChordNode } from './chord-node.ts';
import { iterativeLookup, type LookupResult } from './lookup.ts';
import { METHOD } from './messages.ts';
import { routeToOwnId } from './peer-calls.ts';

/**
 * Join through a known node: the successor is found by an iterative lookup
 * of our own id started at the bootstrap; the predecessor arrives later
 * through notify.
 */
export async function joinThrough(node: ChordNode, bootstrap: NodeRef): Promise<void> {
  if (!node.verify(bootstrap)) throw new OverlayError('IDENTITY_BAD_KEY', 'bootstrap ref is not bound to its key');
  // Nodes joining next to us at the same moment can make our slot briefly
  // unconfirmable: try again after a stabilize period, then give up.
  let res = await findJoinSuccessor(node, bootstrap);
  for (let attempt = 1; !res.ok && attempt < 3; attempt++) {
    await new Promise<void>((r) => node.clock.setTimer(node.init.stabilizeMs, r));
    res = await findJoinSuccessor(node, bootstrap);
  }
  if (!res.ok) throw new OverlayError('DHT_LOOKUP_FAILED', `join: ${res.reason}`);
  if (res.owner.id === node.id) throw new OverlayError('BAD_CONFIG', 'a node with this id is already in the ring');
  if (!(await settleBefore(node, res.owner)))
    throw new OverlayError('DHT_LOOKUP_FAILED', 'join: successor did not answer');
  // The node before our slot learns of us at its next stabilize, which at rest comes only after a long
  // period (adaptive stabilization): a `changed` ping brings that tick forward (see TickPacing). Not a notify:
  // a node without a predecessor would take us, its successor, as one.
  const before = res.pred;
  if (before && before.id !== node.id && before.id !== res.owner.id)
    void node.call(before, METHOD.PING, { changed: true });
}

function findJoinSuccessor(node: ChordNode, bootstrap: NodeRef): Promise<LookupResult> {
  return iterativeLookup(node.lookupContext(), node.id, {
    start: [bootstrap],
    // Nodes joining at the same time leave short runs of new nodes that
    // only predecessor pointers know yet: allow a longer walk back.
    maxBackSteps: 16,
    maxHops: node.init.maxHops,
    alpha: node.init.alpha,
  });
}

/**
 * Take `succ` as successor (notifying it), with its successor list; seed the fingers from it and pull
 * the records this node now owns or replicates (hand-off on join). False when it does not answer.
 */
async function settleBefore(node: ChordNode, succ: NodeRef): Promise<boolean> {
  const nb = await node.neighbors(succ, true);
  if (!nb) return false;
  node.succs.adopt(succ, nb.succs);
  node.fingers.fill(0, succ);
  await node.maintenance.seedFingers(succ);
  await node.maintenance.pullHandoff(succ);
  return true;
}

/**
 * A client's place (see ChordNode.client): the successor of our id, found
 * through the first contact that answers, whose successor list and fingers
 * become routing hints. Throws when no contact leads to one.
 */
export async function findPlaceAsClient(node: ChordNode, contacts: readonly NodeRef[]): Promise<void> {
  let last = 'no contact';
  // A ring still settling (members joining at the same moment) may fail a lookup: try again a few periods on.
  for (let attempt = 0; attempt < 4; attempt++) {
    if (attempt > 0) await new Promise<void>((r) => node.clock.setTimer(node.init.stabilizeMs, r));
    for (const c of contacts) {
      if (c.id === node.id || !node.verify(c)) continue;
      // Routing hints only: the owner of our id need not be confirmed, we take no place next to it.
      const res = await routeToOwnId(node, c);
      if (!res.ok) {
        last = res.reason;
        continue;
      }
      if (await adoptAsClient(node, res.owner)) return;
      last = 'successor did not answer';
    }
  }
  throw new OverlayError('DHT_LOOKUP_FAILED', `join as client: ${last}`);
}

async function adoptAsClient(node: ChordNode, succ: NodeRef): Promise<boolean> {
  const nb = await node.neighbors(succ, false);
  if (!nb) return false;
  node.succs.adopt(
    succ,
    nb.succs.filter((s) => s.id !== node.id),
  );
  node.fingers.fill(0, succ);
  await node.maintenance.seedFingers(succ);
  return true;
}

/** A client's upkeep: its successor's list again (or the next one's, or the contacts'), never a notify. */
export async function clientUpkeep(node: ChordNode, contacts: readonly NodeRef[]): Promise<void> {
  const known = [...node.succs.entries(), ...node.fingers.distinct(), ...contacts].filter(
    (r, i, all) => r.id !== node.id && all.findIndex((x) => x.id === r.id) === i,
  );
  for (const k of known) if (await adoptAsClient(node, k)) break;
  // What this node put is its to keep alive, as a member's is (a client runs no other maintenance).
  await node.maintenance.republish();
}

/**
 * Take up this node's place again after a crash, when the ring may still
 * list it (so a join lookup cannot confirm the place as free): the members
 * it knows become its successor list in ring order, fingers are seeded and
 * the records it owns or replicates are pulled from its successor, as on a
 * join; stabilize and notify correct the rest. The first known member that
 * answers is taken as successor. False when none answers (the list is kept
 * as given).
 */
export async function settleAmong(node: ChordNode, known: readonly NodeRef[]): Promise<boolean> {
  const members = known
    .filter((r) => r.id !== node.id && node.verify(r))
    .sort((x, y) => compareFrom(node.id, x.id, y.id));
  let pulled = false;
  for (let i = 0; i < members.length && !pulled; i++) pulled = await settleBefore(node, members[i]);
  if (!pulled && members.length > 0) node.succs.adopt(members[0], members.slice(1));
  return pulled;
}

/** Leave gracefully: records and neighbours go to the successor, the successor to the predecessor. */
export async function handOverPlace(node: ChordNode): Promise<void> {
  const s = node.successor;
  const from = node.self;
  if (s.id !== node.id)
    await node.call(s, METHOD.LEAVE, { from, pred: node.pred, succs: [], records: node.store.all() });
  if (node.pred && node.pred.id !== node.id && node.pred.id !== s.id)
    await node.call(node.pred, METHOD.LEAVE, { from, pred: null, succs: node.succs.entries(), records: [] });
}
