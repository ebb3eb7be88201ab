import type { Clock, Timer } from '../util/clock.ts';
import type { SipMessage } from './message.ts';
import { DEFAULT_TIMERS, type TimerValues } from './timers.ts';

/**
 * What every transaction core is given: no sockets, no setTimeout. `send`
 * hands a message to the transport (which knows where it goes: the server
 * transaction's source per RFC 3261 18.2.2, or the client transaction's
 * destination per 18.1.1); `reliable` says whether the transport is
 * reliable (TCP), which switches off retransmissions and zeroes the wait timers.
 */
export interface TransactionDeps {
  clock: Clock;
  send: (msg: SipMessage) => void;
  reliable: boolean;
  timers?: TimerValues;
  /**
   * Optional hand-over of a server transaction's last phase, where it only absorbs retransmissions: Completed
   * of a non-INVITE transaction (17.2.2, Timer J), resending `final` for each retransmitted request, and
   * Confirmed of an INVITE transaction (17.2.1, Timer I), absorbing ACKs and INVITEs (`final` undefined), for
   * `ms` milliseconds. When it returns true the owner (the transaction layer) has taken that duty over, keeping
   * only the response bytes, and the transaction terminates at once.
   */
  linger?: (final: SipMessage | undefined, ms: number) => boolean;
  /**
   * Optional: whether the n-th timer-driven retransmission (n from 1) of an INVITE server transaction's final
   * response may go out. The layer bounds them for unauthenticated requests (response-route.ts); Timer H still
   * runs, and a retransmitted INVITE is still answered.
   */
  mayRetransmit?: (n: number) => boolean;
}

/** Shared plumbing: state, named timers, termination callback. The state machines live in the subclasses. */
export abstract class TransactionBase<S extends string> {
  readonly key: string;
  readonly reliable: boolean;
  protected readonly clock: Clock;
  protected readonly t: TimerValues;
  protected readonly sendFn: (msg: SipMessage) => void;
  protected readonly linger: ((final: SipMessage | undefined, ms: number) => boolean) | undefined;
  protected readonly mayRetransmit: ((n: number) => boolean) | undefined;
  /** Running timers by RFC name; created with the first timer (many transactions never start one). */
  private running: Map<string, Timer> | undefined;
  private terminatedListeners: Array<() => void> | undefined;
  protected _state: S;

  constructor(key: string, deps: TransactionDeps, initial: S) {
    this.key = key;
    this.clock = deps.clock;
    this.reliable = deps.reliable;
    this.t = deps.timers ?? DEFAULT_TIMERS;
    this.sendFn = deps.send;
    this.linger = deps.linger;
    this.mayRetransmit = deps.mayRetransmit;
    this._state = initial;
  }

  get state(): S {
    return this._state;
  }

  get terminated(): boolean {
    return this._state === 'terminated';
  }

  /** Called once, when the transaction reaches the Terminated state. */
  onTerminated(fn: () => void): void {
    if (this.terminated) fn();
    else if (this.terminatedListeners) this.terminatedListeners.push(fn);
    else this.terminatedListeners = [fn];
  }

  /** Names of running timers (for tests and diagnostics). */
  timerNames(): string[] {
    return this.running ? [...this.running.keys()] : [];
  }

  protected startTimer(name: string, delayMs: number, fire: () => void): void {
    const running = (this.running ??= new Map());
    running.get(name)?.cancel();
    const handle = this.clock.setTimer(delayMs, () => {
      if (running.get(name) !== handle) return;
      running.delete(name);
      fire();
    });
    running.set(name, handle);
  }

  protected stopTimer(name: string): void {
    if (!this.running) return;
    this.running.get(name)?.cancel();
    this.running.delete(name);
  }

  protected terminate(): void {
    if (this._state === 'terminated') return;
    this._state = 'terminated' as S;
    if (this.running) {
      for (const h of this.running.values()) h.cancel();
      this.running.clear();
    }
    const ls = this.terminatedListeners;
    this.terminatedListeners = undefined;
    if (ls) for (const fn of ls) fn();
  }
}
