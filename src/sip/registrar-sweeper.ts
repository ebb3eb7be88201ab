/**
 * Expired registrations are dropped lazily by lookups; a long-running
 * registrar also sweeps them on a timer so bindings nobody asks for do not
 * pile up (RFC 3261 10.3: a binding lives until its expiry). One sweeper for
 * every daemon that holds a Registrar, on the injected clock.
 */
import type { Clock, Timer } from '../util/clock.ts';

/** Default time between sweeps (ms). */
export const SWEEP_EVERY_MS = 30_000;

export interface Sweepable {
  sweep(): number;
}

/** Sweep `registrar` every `everyMs` until the returned stop function is called. */
export function startSweeping(registrar: Sweepable, clock: Clock, everyMs = SWEEP_EVERY_MS): () => void {
  let timer: Timer | undefined;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    registrar.sweep();
    timer = clock.setTimer(everyMs, tick);
  };
  timer = clock.setTimer(everyMs, tick);
  return () => {
    stopped = true;
    timer?.cancel();
  };
}
