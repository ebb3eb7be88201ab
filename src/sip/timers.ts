/**
 * Transaction timer values, RFC 3261 section 17 and Table 4 (appendix A).
 * Names follow the RFC (T1, T2, T4, Timer A ... Timer K) so each use can be
 * checked against the text.
 */
export interface TimerValues {
  /** RTT estimate, default 500 ms (17.1.1.1). */
  T1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s. */
  T2: number;
  /** Maximum duration a message remains in the network, default 5 s. */
  T4: number;
}

export const DEFAULT_TIMERS: Readonly<TimerValues> = Object.freeze({ T1: 500, T2: 4000, T4: 5000 });

/** Timer A initial value: T1 (17.1.1.2); doubles each firing. */
export const timerA = (t: TimerValues): number => t.T1;
/** Timer B: 64*T1, INVITE transaction timeout (17.1.1.2). */
export const timerB = (t: TimerValues): number => 64 * t.T1;
/** Timer D: at least 32 s for unreliable transports, zero for reliable (17.1.1.2). */
export const timerD = (t: TimerValues, reliable: boolean): number => (reliable ? 0 : Math.max(32000, 64 * t.T1));
/** Timer E initial value: T1 (17.1.2.2); doubles up to T2. */
export const timerE = (t: TimerValues): number => t.T1;
/** Timer F: 64*T1, non-INVITE transaction timeout (17.1.2.2). */
export const timerF = (t: TimerValues): number => 64 * t.T1;
/** Timer G initial value: T1 (17.2.1); doubles up to T2. */
export const timerG = (t: TimerValues): number => t.T1;
/** Timer H: 64*T1, wait time for ACK receipt (17.2.1). */
export const timerH = (t: TimerValues): number => 64 * t.T1;
/** Timer I: T4 for unreliable transports, zero for reliable (17.2.1). */
export const timerI = (t: TimerValues, reliable: boolean): number => (reliable ? 0 : t.T4);
/** Timer J: 64*T1 for unreliable transports, zero for reliable (17.2.2). */
export const timerJ = (t: TimerValues, reliable: boolean): number => (reliable ? 0 : 64 * t.T1);
/** Timer K: T4 for unreliable transports, zero for reliable (17.1.2.2). */
export const timerK = (t: TimerValues, reliable: boolean): number => (reliable ? 0 : t.T4);

/** Next retransmit interval: doubled, capped at T2 when `cap` (Timers E and G), uncapped for Timer A. */
export function backoff(current: number, t: TimerValues, cap: boolean): number {
  const next = current * 2;
  return cap ? Math.min(next, t.T2) : next;
}
