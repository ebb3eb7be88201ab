import type { Clock, Timer } from '../util/clock.ts';
import type { SipMessage } from './message.ts';
import type { TimerQueue } from './timer-queue.ts';
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
  /** Where the timers go (one clock timer for the whole layer); without it each timer is a clock timer of its own. */
  timerQueue?: TimerQueue;
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
  /**
   * Optional: keep a final response just sent as its bytes alone, returning what sends those bytes again. An
   * INVITE server transaction in Completed (17.2.1) resends its final response on Timer G and for each
   * retransmitted INVITE until the ACK or Timer H (32 s): with this it holds neither the message object nor a
   * serialisation per resend. Undefined when the transport cannot keep the bytes.
   */
  retain?: (final: SipMessage) => (() => void) | undefined;
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
  protected readonly retain: ((final: SipMessage) => (() => void) | undefined) | undefined;
  private readonly timerQueue: TimerQueue | undefined;
  /** Running timers and their RFC names, side by side; created with the first timer (many never start one). */
  private running: Array<Timer | string> | undefined;
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
    this.retain = deps.retain;
    this.timerQueue = deps.timerQueue;
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
    const r = this.running;
    const out: string[] = [];
    if (r) for (let i = 0; i < r.length; i += 2) out.push(r[i] as string);
    return out;
  }

  protected startTimer(name: string, delayMs: number, fire: () => void): void {
    this.stopTimer(name);
    const running = (this.running ??= []);
    // A small array of (name, timer) pairs: a transaction runs at most three timers at once.
    const handle: Timer = this.timerQueue
      ? this.timerQueue.set(delayMs, () => this.fired(handle, fire))
      : this.clock.setTimer(delayMs, () => this.fired(handle, fire));
    running.push(name, handle);
  }

  private fired(handle: Timer, fire: () => void): void {
    const r = this.running;
    if (r === undefined) return;
    const i = r.indexOf(handle);
    if (i < 0) return;
    r.splice(i - 1, 2);
    fire();
  }

  protected stopTimer(name: string): void {
    const r = this.running;
    if (r === undefined) return;
    for (let i = 0; i < r.length; i += 2)
      if (r[i] === name) {
        (r[i + 1] as Timer).cancel();
        r.splice(i, 2);
        return;
      }
  }

  protected terminate(): void {
    if (this._state === 'terminated') return;
    this._state = 'terminated' as S;
    const r = this.running;
    if (r) {
      for (let i = 1; i < r.length; i += 2) (r[i] as Timer).cancel();
      r.length = 0;
    }
    const ls = this.terminatedListeners;
    this.terminatedListeners = undefined;
    if (ls) for (const fn of ls) fn();
  }
}
