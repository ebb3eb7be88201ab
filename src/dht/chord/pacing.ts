import type { NodeRef } from '../../rpc/types.ts';
import type { ChordNode } from './chord-node.ts';

/** Links kept open ahead of need (see keptLinks): the routing table first, then nodes of the view. */
const KEPT_LINKS = 64;

/**
 * Adaptive stabilization. A ring at rest needs none of the work of a tick,
 * but a ring that changed needs it at once: each tick that finds the
 * neighbourhood as the last one left it (same predecessor, same successor
 * list), saw no RPC fail since, and has no hand-off, rehome or join check
 * pending doubles the period, up to maxStabilizeMs; anything else sets it
 * back to stabilizeMs. So a failed successor costs at most one long period
 * more to notice, and from then on the repair runs at the short period as
 * before (suspicion, removal, the next successor). A new predecessor
 * (notify) brings the next tick forward (wake) rather than waiting.
 */
export class TickPacing {
  /** The period until the next tick. */
  periodMs: number;
  /** Predecessor and successor list at the end of the last tick, and the RPC failures counted by then. */
  private lastShape = '';
  private lastFailures = 0;
  /** Probes of remembered members that went unanswered: expected of crashed nodes, not a change. */
  probeMisses = 0;

  constructor(private readonly node: ChordNode) {
    this.periodMs = node.init.stabilizeMs;
  }

  /** After a tick; `pending`: work left that the next tick must do soon (hand-off, rehome, join checks). */
  adapt(pending: boolean): void {
    const n = this.node;
    let shape = n.pred?.id ?? '-';
    for (const r of n.succs.entries()) shape += r.id;
    // Members lost long ago are probed (with backoff) until they answer; their silence is no news.
    const failures = n.counters.rpcFailures - this.probeMisses;
    const calm = !pending && shape === this.lastShape && failures === this.lastFailures && n.successor.id !== n.id;
    this.lastShape = shape;
    this.lastFailures = failures;
    this.periodMs = calm ? Math.min(2 * this.periodMs, n.init.maxStabilizeMs) : n.init.stabilizeMs;
  }

  /** Back to the short period now: the neighbourhood changed between ticks. */
  wake(): void {
    if (this.periodMs === this.node.init.stabilizeMs) return;
    this.periodMs = this.node.init.stabilizeMs;
    this.node.hurry();
  }
}

/**
 * Tell a connection-based endpoint which links to keep open and dial ahead
 * of need: successors, predecessor and fingers (every hop of routing and
 * stabilization), then, once the view is in use (a ring small enough for it
 * to name most owners, see RingView.around), the nodes of the view, newest
 * first, up to KEPT_LINKS. A lookup answered from the view goes straight to
 * the owner and its predecessor, anywhere on the ring: on a ring of tens of
 * nodes this keeps a link to every node, so no get waits for a handshake.
 */
export function keepLinks(n: ChordNode): void {
  if (!n.endpoint.keepLinks) return;
  const out = new Map<string, NodeRef>();
  const add = (r: NodeRef) => {
    if (out.size < KEPT_LINKS && r.id !== n.id && !n.failures.failed(r.id)) out.set(r.id, r);
  };
  for (const r of n.succs.entries()) add(r);
  if (n.pred) add(n.pred);
  for (const r of n.fingers.distinct()) add(r);
  n.view.startIfSmall(n.succs.entries(), () => [...out.values()]);
  const view = n.view.known();
  for (let i = view.length - 1; i >= 0 && out.size < KEPT_LINKS; i--) add(view[i]);
  n.endpoint.keepLinks([...out.values()]);
}
