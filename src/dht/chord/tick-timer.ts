/**
 * The timer that runs one node's periodic work: a member's maintenance tick
 * at the period TickPacing sets, spread by the jitter and brought forward
 * when the period drops back to the short one, or a client's slower upkeep
 * of its routing hints. Apart from ChordNode, which only starts it (join,
 * warm start, rejoin) and stops it (leave, stop), so that the node keeps its
 * protocol state and this file says when the work runs.
 */
import type { NodeRef } from '../../rpc/types.ts';
import type { Timer } from '../../util/clock.ts';
import type { ChordNode } from './chord-node.ts';
import { clientUpkeep } from './joining.ts';

export class TickTimer {
  private timer: Timer | undefined;
  private timerAt = 0;
  /** The members a client refreshes its routing hints through (see ChordNode.joinAsClient). */
  clientContacts: readonly NodeRef[] = [];

  constructor(private readonly node: ChordNode) {}

  scheduleClient(): void {
    const n = this.node;
    if (n.stopped) return;
    this.timer = n.clock.setTimer(2 * n.init.stabilizeMs, () => {
      this.timer = undefined;
      clientUpkeep(n, this.clientContacts).finally(() => this.scheduleClient());
    });
  }

  /** The tick period dropped back to the short one (Maintenance.wake): a tick due later comes sooner. */
  hurry(): void {
    const n = this.node;
    if (n.stopped || !this.timer || this.timerAt - n.clock.now() <= n.maintenance.periodMs) return;
    this.cancel();
    this.schedule();
  }

  schedule(): void {
    const n = this.node;
    if (n.stopped) return;
    const p = n.maintenance.periodMs;
    const delay = p * (1 - n.init.jitter / 2 + n.random.next() * n.init.jitter);
    this.timerAt = n.clock.now() + delay;
    this.timer = n.clock.setTimer(delay, () => {
      this.timer = undefined;
      n.maintenance.tick().finally(() => this.schedule());
    });
  }

  cancel(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}
