import type { NodeRef } from '../../rpc/types.ts';
import type { ChordNode } from './chord-node.ts';
import { METHOD } from './messages.ts';

/** Links kept open ahead of need (see keptLinks): the routing table first, then nodes of the view. */
const KEPT_LINKS = 64;

/**
 * Adaptive stabilization. A ring at rest needs none of the work of a tick,
 * but a ring that changed needs it at once: each tick that finds the
 * neighbourhood as the last one left it (same predecessor, same successor
 * list), saw no RPC fail since, and has nothing pending (a hand-off, a
 * rehome, join checks, a finger table whose last pass moved a finger, a
 * record due for republishing soon) doubles the period, up to
 * maxStabilizeMs; anything else sets it back to stabilizeMs.
 *
 * Waiting out a long period is only for what no node observes. Every
 * change a node does observe wakes it (back to the short period, the next
 * tick brought forward): a new predecessor, a notify from a node between
 * us and our successor (a join there; the joiner also sends the node
 * before its slot a `changed` ping), a notify from a node that takes itself for our
 * predecessor while another sits between (ours may be gone: it is pinged
 * at the next tick), an RPC to a node thought alive that failed, a member
 * we had lost calling again (a partition healed), a neighbour leaving, and
 * a `changed` ping: a node whose first r-1 successors changed tells its
 * predecessor (whose list holds them), and a node whose successor stopped
 * answering tells the rest of its list (the first live one may have lost
 * its predecessor with it). So a crash that nobody's RPC meets is noticed
 * at the next tick of the nodes on either side of it, at most one long
 * period later, and the repair then runs at the short period throughout.
 */
export class TickPacing {
  /** The period until the next tick. */
  periodMs: number;
  /** Predecessor and successor list at the end of the last tick, and the RPC failures counted by then. */
  private lastShape = '';
  private lastFailures = 0;
  /** Probes of remembered members that went unanswered: expected of crashed nodes, not a change. */
  probeMisses = 0;
  /** The first r-1 successors at the end of the last tick (what our predecessor's list holds of ours). */
  private lastHead = '';
  /** Something changed since the last tick (see wake): the next tick may not back off. */
  private woken = false;

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
    const calm =
      !pending && !this.woken && shape === this.lastShape && failures === this.lastFailures && n.successor.id !== n.id;
    this.woken = false;
    this.lastShape = shape;
    this.lastFailures = failures;
    // Our predecessor's list is us and the first r-1 entries of ours: when those changed (a successor failed
    // or joined), tell it, so that its next tick comes at the short period instead of after a long one; the
    // change travels back one node per tick as in stabilize, but without waiting out a long period at each.
    let head = '';
    for (const r of n.succs.entries().slice(0, n.r - 1)) head += r.id;
    if (this.lastHead !== '' && head !== this.lastHead && n.pred && n.pred.id !== n.id)
      void n.call(n.pred, METHOD.PING, { changed: true });
    this.lastHead = head;
    this.periodMs = calm ? Math.min(2 * this.periodMs, n.init.maxStabilizeMs) : n.init.stabilizeMs;
  }

  /**
   * Back to the short period now: something changed between ticks (a new
   * predecessor, a node announcing itself between us and our successor, an
   * RPC to a node thought alive that failed, a lost member calling again).
   * A wake during a tick holds for the tick after it too.
   */
  wake(): void {
    this.woken = true;
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
  const mean = n.view.startIfSmall(n.succs.entries(), () => [...out.values()]);
  // A gap in the view likely hides nodes: their successor lists fill it, and their links are dialed now, not
  // in the middle of a get whose lookup first hears of them.
  const gap = mean === undefined ? undefined : n.view.wideGap(mean);
  if (gap && gap.id !== n.id && !n.failures.doubted(gap.id)) void n.neighbors(gap, false);
  const view = n.view.known();
  for (let i = view.length - 1; i >= 0 && out.size < KEPT_LINKS; i--) add(view[i]);
  n.endpoint.keepLinks([...out.values()]);
}
