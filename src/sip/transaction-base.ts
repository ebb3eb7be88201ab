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
}

/** Shared plumbing: state, named timers, termination callback. The state machines live in the subclasses. */
export abstract class TransactionBase<S extends string> {
  readonly key: string;
  readonly reliable: boolean;
  protected readonly clock: Clock;
  protected readonly t: TimerValues;
  protected readonly sendFn: (msg: SipMessage) => void;
  private readonly running = new Map<string, Timer>();
  private terminatedListeners: Array<() => void> = [];
  protected _state: S;

  constructor(key: string, deps: TransactionDeps, initial: S) {
    this.key = key;
    this.clock = deps.clock;
    this.reliable = deps.reliable;
    this.t = deps.timers ?? DEFAULT_TIMERS;
    this.sendFn = deps.send;
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
    else this.terminatedListeners.push(fn);
  }

  /** Names of running timers (for tests and diagnostics). */
  timerNames(): string[] {
    return [...this.running.keys()];
  }

  protected startTimer(name: string, delayMs: number, fire: () => void): void {
    this.running.get(name)?.cancel();
    const handle = this.clock.setTimer(delayMs, () => {
      if (this.running.get(name) !== handle) return;
      this.running.delete(name);
      fire();
    });
    this.running.set(name, handle);
  }

  protected stopTimer(name: string): void {
    this.running.get(name)?.cancel();
    this.running.delete(name);
  }

  protected terminate(): void {
    if (this._state === 'terminated') return;
    this._state = 'terminated' as S;
    for (const h of this.running.values()) h.cancel();
    this.running.clear();
    const ls = this.terminatedListeners;
    this.terminatedListeners = [];
    for (const fn of ls) fn();
  }
}
