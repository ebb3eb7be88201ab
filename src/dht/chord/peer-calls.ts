/**
 * A Chord node's calls to its peers: every RPC goes through `callPeer`,
 * which never throws and feeds the failure detector, the RPC timeout and
 * the tick's pacing; replies that name nodes are checked (refs bound to
 * their keys, the answering node still at the id we know) before anything
 * learns from them.
 */
import type { NodeRef, Payload } from '../../rpc/types.ts';
import type { ChordNode } from './chord-node.ts';
import { iterativeLookup, type LookupContext, type LookupResult } from './lookup.ts';
import { decodeFindReply, decodeNeighborsReply, METHOD, type NeighborsReply } from './messages.ts';

/** An RPC that never throws: null on timeout, refusal or a closed peer. */
export async function callPeer(
  node: ChordNode,
  to: NodeRef,
  method: string,
  payload: Payload,
): Promise<Payload | null> {
  if (to.id === node.id) {
    try {
      return node.handleRequest(method, payload, { key: node.self.key, ref: node.self, addr: node.self.addr });
    } catch {
      return null;
    }
  }
  const sent = node.clock.now();
  try {
    const timeoutMs = node.failures.timeoutMs(node.init.rpcTimeoutMs);
    const reply = await node.endpoint.request(to, method, payload, { timeoutMs });
    // Smoothed round trip (RFC 6298 2.3): how long a caller may wait for a node before trying another way.
    node.failures.sample(node.clock.now() - sent);
    node.metrics.observe('chord_rpc_seconds', (node.clock.now() - sent) / 1000, { method, result: 'ok' });
    node.failures.alive(to.id);
    return reply;
  } catch {
    // A node thought alive did not answer: tick at the short period until the suspicion is settled. A lost
    // member's silence (see RememberedMembers) is no news.
    if (!node.remembered.silent(to.id)) node.maintenance.pacing.wake();
    node.counters.rpcFailures++;
    node.metrics.observe('chord_rpc_seconds', (node.clock.now() - sent) / 1000, { method, result: 'failed' });
    node.view.mute(to.id);
    if (node.failures.missed(to.id)) {
      // Failed (not merely slow, see FailureDetector): no longer a routing hint; remembered and probed.
      node.fingers.remove(to.id);
      node.remembered.lost(to, node.clock.now());
    }
    return null;
  }
}

/**
 * Did `to` answer as itself? Replies to PING and NEIGHBORS carry the answering node's id (absent from older
 * nodes); an answer at another id means the entry is stale, and is counted.
 */
export function answeredAsItself(node: ChordNode, to: NodeRef, reply: Payload): boolean {
  const id = typeof reply === 'object' && reply !== null ? (reply as { id?: unknown }).id : undefined;
  if (id === undefined || id === to.id) return true;
  node.counters.staleRefs++;
  node.view.mute(to.id);
  node.fingers.remove(to.id);
  node.failures.condemn(to.id);
  node.remembered.drop(to.id);
  return false;
}

/** NEIGHBORS at `to` (with our notify when `notify`): its predecessor and successor list, checked. */
export async function askNeighbors(node: ChordNode, to: NodeRef, notify: boolean): Promise<NeighborsReply | null> {
  const raw = await node.call(to, METHOD.NEIGHBORS, notify ? { notify, from: node.self } : { notify });
  if (raw === null) return null;
  const decoded = decodeNeighborsReply(raw);
  // It answered, but with nonsense: as useless as a failed node, and dropped as one.
  if (!decoded.ok) {
    node.failures.condemn(to.id);
    return null;
  }
  const nb = decoded.value;
  // The key answered (TLS pins it) but the node now sits at another id (it was admitted again and
  // kept its address): the entry is stale, and is treated as a node that does not answer.
  if (!node.sameNode(to, raw as Payload)) return null;
  const out = { pred: nb.pred && node.verify(nb.pred) ? nb.pred : null, succs: boundOnly(node, nb.succs) };
  node.view.learn(out.succs);
  if (out.pred) node.view.learn([out.pred]);
  return out;
}

/**
 * The owner of this node's own id as routing from `via` finds it, not confirmed (no second source): for
 * routing hints and ring merging, which check what they take from it themselves.
 */
export function routeToOwnId(node: ChordNode, via: NodeRef): Promise<LookupResult> {
  return iterativeLookup(node.lookupContext(), node.id, {
    start: [via],
    confirm: false,
    maxHops: node.init.maxHops,
    alpha: node.init.alpha,
  });
}

/** What an iterative lookup started at this node asks through (lookup.ts). */
export function lookupContextOf(node: ChordNode): LookupContext {
  return {
    self: node.self,
    localStep: (t) => node.localStep(t),
    find: async (to, target) => {
      const raw = await node.call(to, METHOD.FIND, { target });
      const rep = raw === null ? null : decodeFindReply(raw);
      if (!rep?.ok) return null;
      const out = { succs: boundOnly(node, rep.value.succs), next: boundOnly(node, rep.value.next) };
      node.view.learn(out.succs);
      node.view.learn(out.next);
      return out;
    },
    neighbors: (to) => node.neighbors(to, false),
    guess: (t) => {
      // Only where links are kept warm (see pacing.ts keepLinks): there the guessed pair answers in one round
      // trip. Elsewhere (the in-memory network) routing also fills the view that direct reads plan from.
      if (!node.endpoint.keepLinks) return undefined;
      const g = node.view.around(
        t,
        node.succs.entries(),
        () => [...node.succs.entries(), ...node.fingers.distinct(), ...(node.pred ? [node.pred] : [])],
        (id) => !node.failures.doubted(id) && !node.remembered.silent(id),
      );
      // Two round trips and a margin: longer than a guess that answers takes, far shorter than a timeout.
      return g && { ...g, waitMs: Math.max(10, 4 * node.failures.srtt) };
    },
    sleep: (ms) => new Promise<void>((r) => node.clock.setTimer(ms, r)),
    report: (to, silent) => {
      // At most one such hint to a node per short period, whatever the number of lookups that meet it.
      const now = node.clock.now();
      const last = node.reportedAt.get(to.id);
      if (last !== undefined && now - last < node.init.stabilizeMs) return;
      if (node.reportedAt.size >= 256) node.reportedAt.clear();
      node.reportedAt.set(to.id, now);
      void node.call(to, METHOD.PING, { changed: true, silent });
    },
  };
}

/** The refs of a list that pass `verify` (the list itself when all do). */
function boundOnly(node: ChordNode, refs: NodeRef[]): NodeRef[] {
  for (const r of refs) if (!node.verify(r)) return refs.filter((x) => node.verify(x));
  return refs;
}
