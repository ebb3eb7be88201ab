import type { Caller, NodeRef, Payload } from '../../rpc/types.ts';
import { OverlayError } from '../../util/errors.ts';
import type { DhtRecord } from '../store/record.ts';
import { inOpen } from '../store/ring-id.ts';
import type { ChordNode } from './chord-node.ts';
import {
  decodeFetchRequest,
  decodeFindRequest,
  decodeLeaveRequest,
  decodeNeighborsRequest,
  decodeRef,
  decodeStoreRequest,
  METHOD,
} from './messages.ts';
import { bytesEqual } from '../../util/bytes.ts';

/**
 * Answers to the Chord RPCs, one function per method. Bad input is refused
 * with RPC_MALFORMED and counted; refs that are not bound to their key are
 * dropped. Nothing here waits on the network, so every answer is immediate.
 */
export function handleChordRequest(node: ChordNode, method: string, payload: Payload, caller: Caller): Payload {
  if (node.stopped) throw new OverlayError('RPC_REFUSED', 'node stopped');
  switch (method) {
    case METHOD.FIND:
      return find(node, payload);
    case METHOD.NEIGHBORS:
      return neighbors(node, payload, caller);
    case METHOD.PING:
      heardFrom(node, caller);
      // The caller's successor list changed (pacing.ts): ours may have, so tick at the short period. Only
      // timing: a caller can cost us at most the short period's ticks, never a change of state.
      if ((payload as { changed?: unknown } | null)?.changed === true) node.maintenance.pacing.wake();
      // A caller found our predecessor silent (LookupContext.report): ping it at the next tick, however lately
      // it was heard from. Again only timing: it is dropped only if it also fails our own pings.
      if (node.pred && (payload as { silent?: unknown } | null)?.silent === node.pred.id)
        node.maintenance.predDoubted();
      return { id: node.id };
    case METHOD.STORE:
      return store(node, payload);
    case METHOD.FETCH:
      return fetch(node, payload);
    case METHOD.HANDOFF:
      return handoff(node, payload, caller);
    case METHOD.LEAVE:
      return leave(node, payload, caller);
    case METHOD.FINGERS:
      return { refs: [...node.fingers.distinct(), ...node.succs.entries()].filter((r) => r.id !== node.id) };
    default:
      return malformed(node, `unknown method ${method}`);
  }
}

function malformed(node: ChordNode, why: string): never {
  node.counters.malformed++;
  throw new OverlayError('RPC_MALFORMED', why);
}

/** The caller's own ref, taken from the payload's `from` or the transport, bound to the key it proved. */
function callerRef(node: ChordNode, payload: Payload, caller: Caller): NodeRef | null {
  const from = (payload as { from?: unknown } | null)?.from;
  const decoded = from !== undefined ? decodeRef(from) : null;
  const ref = decoded === null ? (caller.ref ?? null) : decoded.ok ? decoded.value : null;
  if (!ref || !bytesEqual(ref.key, caller.key) || !node.verify(ref)) {
    node.counters.refusedRefs++;
    return null;
  }
  return ref;
}

function find(node: ChordNode, payload: Payload): Payload {
  const req = decodeFindRequest(payload);
  if (!req.ok) return malformed(node, req.error);
  return node.localStep(req.value.target);
}

function neighbors(node: ChordNode, payload: Payload, caller: Caller): Payload {
  const req = decodeNeighborsRequest(payload);
  if (!req.ok) return malformed(node, req.error);
  if (req.value.notify) {
    const ref = callerRef(node, payload, caller);
    if (ref) notify(node, ref);
  } else heardFrom(node, caller);
  return { pred: node.pred, succs: node.succs.entries(), id: node.id };
}

function store(node: ChordNode, payload: Payload): Payload {
  const req = decodeStoreRequest(payload);
  if (!req.ok) return malformed(node, req.error);
  return { results: req.value.records.map((r) => storeOne(node, r)) };
}

function storeOne(node: ChordNode, r: DhtRecord): string | null {
  const out = node.store.put(r);
  return out.ok ? null : out.code;
}

function fetch(node: ChordNode, payload: Payload): Payload {
  const req = decodeFetchRequest(payload);
  if (!req.ok) return malformed(node, req.error);
  return { records: req.value.keys.map((k) => node.store.get(k) ?? null) };
}

/**
 * A joining node n takes a copy of every record its successor s holds outside
 * (n, s]. Why that is exactly n's new range: s holds the keys it owns or
 * replicates, (pred^r(s), s]; n, linked in between pred(s) and s, owns
 * (pred(s), n] and replicates its r-1 predecessors' keys, so it needs
 * (pred^(r-1)(pred(s)), n] = what s holds minus (n, s] (at most one
 * predecessor range more, which s cannot tell apart). This holds only for a
 * caller that is becoming our predecessor: one inside (pred, self) as we see
 * it, or our predecessor already (a joiner notifies us before it pulls, and
 * notify takes it as predecessor when we have none; so does a node taking up
 * its place again after a crash). Any other caller needs nothing from us (a
 * stale view is repaired by handOver's push) and gets no records, so an
 * admitted node cannot read a store by asking for it.
 */
function handoff(node: ChordNode, payload: Payload, caller: Caller): Payload {
  const ref = callerRef(node, payload, caller);
  if (!ref) throw new OverlayError('RPC_REFUSED', 'unbound ref');
  const pred = node.pred;
  // A node without a predecessor takes any notifier as one (notify of Fig. 7): such a caller is becoming it.
  if (ref.id === node.id || (pred !== null && ref.id !== pred.id && !inOpen(ref.id, pred.id, node.id))) {
    node.counters.handoffsDenied++;
    return { records: [] };
  }
  return { records: node.store.outside(ref.id, node.id) };
}

/** Graceful leave (Stoica et al. 2003 section V-C): the leaving node hands over its records and neighbours. */
function leave(node: ChordNode, payload: Payload, caller: Caller): Payload {
  const ref = callerRef(node, payload, caller);
  const decoded = decodeLeaveRequest(payload);
  if (!decoded.ok) return malformed(node, decoded.error);
  if (!ref) return malformed(node, 'leave: unbound ref');
  const req = decoded.value;
  for (const r of req.records) storeOne(node, r);
  peerLeft(
    node,
    ref,
    req.pred && node.verify(req.pred) ? req.pred : null,
    req.succs.filter((s) => node.verify(s)),
  );
  return {};
}

/** notify(n') of Fig. 7: n' thinks it might be our predecessor. */
function notify(node: ChordNode, n: NodeRef): void {
  if (n.id === node.id) return;
  const s = node.successor;
  // A node between us and our successor (one that just joined there) or one that takes itself for our
  // predecessor while another sits between it and us (ours may have failed): stabilize and
  // check_predecessor should look at the short period, not after a long one.
  if (s.id !== node.id && inOpen(n.id, node.id, s.id)) node.maintenance.pacing.wake();
  else if (node.pred && n.id !== node.pred.id && !inOpen(n.id, node.pred.id, node.id)) node.maintenance.predDoubted();
  if (!node.pred || inOpen(n.id, node.pred.id, node.id)) node.setPred(n);
  node.view.learn([n]);
  if (node.pred?.id === n.id) node.predHeardAt = node.clock.now();
  // A one-node ring learns its first successor from the first notify.
  if (node.successor.id === node.id) node.succs.prepend(n);
}

/** Any call from our predecessor shows it alive (see Maintenance.checkPredecessor). */
function heardFrom(node: ChordNode, caller: Caller): void {
  if (node.pred && caller.ref?.id === node.pred.id) node.predHeardAt = node.clock.now();
}

/** A neighbour left gracefully and told us who to link to instead. */
function peerLeft(node: ChordNode, who: NodeRef, itsPred: NodeRef | null, itsSuccs: NodeRef[]): void {
  node.maintenance.pacing.wake();
  if (node.pred?.id === who.id) node.setPred(itsPred && itsPred.id !== node.id ? itsPred : null);
  if (node.successor.id === who.id) {
    node.succs.remove(who.id);
    const next = itsSuccs.filter((s) => s.id !== who.id);
    if (next.length > 0) node.succs.adopt(next[0], next.slice(1));
  } else node.succs.remove(who.id);
  node.fingers.remove(who.id);
}
