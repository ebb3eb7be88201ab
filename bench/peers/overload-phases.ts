/**
 * The measurements of bench/peers/overload.ts against one server: its capacity (calibrate), one phase of offered
 * load (runPhase) and a long run at capacity on a fresh process (soak).
 */
import { cpuSeconds, type RunningServer, type ServerKind, sipp } from './kamailio-servers.ts';
import type { SippResult } from './sipp-load.ts';

/** Calls answered this long after the end of a phase still count for it; later ones are cut off. */
export const GRACE_S = 3;

export interface Phase {
  server: ServerKind;
  multiple: number;
  target: number;
  /** The rate sipp managed to offer (calls started per second while starting them). */
  offeredRate: number;
  instances: number;
  offered: number;
  /** Calls answered 302, in the phase or in the grace period after it. */
  successful: number;
  /** Of those, answered within the phase (goodput counts these). */
  successfulInPhase: number;
  /** Calls that ended without a 302: refused with 503, or timed out. */
  failed: number;
  retransmissions: number;
  goodput: number;
  /** Goodput as a share of the server's capacity, %. */
  goodputShare: number;
  perSecond: number[];
  retransPerSecond: number[];
  failedPerSecond: number[];
  /**
   * Seconds from the start of the phase until every later full second answered at least 90 % of the offered rate
   * (phases at or below capacity only).
   */
  recoveredAfterS?: number;
  load: number;
}

export interface Soak {
  target: number;
  offeredRate: number;
  successful: number;
  failed: number;
  retransmissions: number;
  perSecond: number[];
  retransPerSecond: number[];
  failedPerSecond: number[];
  /** The second with the most retransmissions. */
  worstSecond: { second: number; successful: number; retransmissions: number };
}

const pause = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/**
 * Clean: sipp offered the rate, every call was answered 302, answers kept pace (the step's full seconds answered
 * at least 95 % of its calls) and sipp retransmitted for at most 2 % of the calls. Some retransmissions
 * come from the load generator and the shared machine (a datagram lost in sipp's own socket buffer while it
 * waited for a core), not from the server, so none at all would understate capacity.
 */
function clean(r: SippResult, rate: number, seconds: number): boolean {
  const inStep = r.perSecond.slice(0, Math.floor(seconds)).reduce((a, b) => a + b, 0);
  return (
    r.offeredRate >= rate * 0.95 &&
    r.failed === 0 &&
    r.successful >= r.offered &&
    inStep >= rate * Math.floor(seconds) * 0.95 &&
    r.retransmissions <= r.offered * 0.02
  );
}

export interface CalibrationStep {
  rate: number;
  offeredRate: number;
  successful: number;
  offered: number;
  failed: number;
  retransmissions: number;
  usPerCall: number;
  clean: boolean;
}

/**
 * The server's capacity on this machine now: the highest rate a fresh process serves cleanly for 3 s. A first
 * step at a low rate measures CPU per call; the ramp starts at 60 % of what that CPU cost allows in the server's
 * share of a core (the cost per call falls with the rate), climbs in steps of 25 % (up to 50 % while the server uses little of its share) until a step is not clean, then
 * narrows the gap between the last clean rate and the first unclean one (two steps at their geometric mean). A figure from CPU time alone would overstate capacity: a
 * server also needs its answers out before its clients retransmit.
 */
export async function calibrate(
  kind: ServerKind,
  start: () => Promise<RunningServer>,
  csv: string,
  dir: string,
  opts: { share: number; instancesFor: (rate: number) => number },
): Promise<{ capacity: number; steps: CalibrationStep[] }> {
  const s = await start();
  const steps: CalibrationStep[] = [];
  const step = async (rate: number): Promise<CalibrationStep> => {
    const c0 = cpuSeconds(s.pids());
    const r = await sipp('invite-302', csv, s.port, rate, 3, dir, {
      timeoutS: 3 + GRACE_S,
      instances: opts.instancesFor(rate),
    });
    const usPerCall = ((cpuSeconds(s.pids()) - c0) / Math.max(1, r.successful)) * 1e6;
    const st: CalibrationStep = {
      rate,
      offeredRate: r.offeredRate,
      successful: r.successful,
      offered: r.offered,
      failed: r.failed,
      retransmissions: r.retransmissions,
      usPerCall: Math.round(usPerCall * 10) / 10,
      clean: clean(r, rate, 3),
    };
    steps.push(st);
    process.stderr.write(
      `${kind} calibration ${rate}/s (offered ${r.offeredRate}/s): ${r.successful}/${r.offered} ok, ${r.retransmissions} retransmissions, ${st.usPerCall} us CPU/call${st.clean ? '' : ', not clean'}\n`,
    );
    await pause(1000);
    return st;
  };
  try {
    await sipp('register', csv, s.port, 1000, 1, dir, { timeoutS: 11 });
    const probe = Math.round(Math.max(200, 1000 * opts.share));
    const first = await step(probe);
    const estimate = (opts.share * 1e6) / Math.max(1, first.usPerCall);
    // Up by 25 % while clean (down by 20 % while the first steps are not), then two halvings of the gap between
    // the last clean rate and the first that was not.
    let rate = Math.max(probe, Math.round(estimate * 0.6));
    let capacity = first.clean ? probe : 0;
    let over = Number.POSITIVE_INFINITY;
    let halvings = 0;
    for (let i = 0; i < 16; i++) {
      const st = await step(rate);
      if (st.clean) capacity = Math.max(capacity, rate);
      else over = Math.min(over, rate);
      // Up faster (to 1.5x) while the server's share of a core is far from used.
      const used = (st.usPerCall * rate) / (opts.share * 1e6);
      if (over === Number.POSITIVE_INFINITY) rate = Math.round(rate * Math.min(1.5, Math.max(1.25, 0.85 / used)));
      else if (capacity === 0) rate = Math.round(rate * 0.8);
      else if (over / capacity > 1.06 && halvings++ < 2) rate = Math.round(Math.sqrt(capacity * over));
      else break;
      if (rate <= 50) break;
    }
    if (capacity === 0) throw new Error(`${kind}: no clean rate found (last ${rate}/s)`);
    process.stderr.write(`${kind} capacity: ${capacity}/s\n`);
    return { capacity, steps };
  } finally {
    await s.stop();
  }
}

/** First second from which every full second (the last, partial one left out) answered >= 90 % of `rate`. */
function recoveredAfter(perSecond: number[], rate: number, seconds: number): number {
  const full = perSecond.slice(0, Math.max(1, Math.floor(seconds)));
  let from = full.length;
  for (let i = full.length - 1; i >= 0 && full[i] >= rate * 0.9; i--) from = i;
  return from;
}

export async function runPhase(
  kind: ServerKind,
  s: RunningServer,
  csv: string,
  dir: string,
  capacity: number,
  multiple: number,
  seconds: number,
  instancesFor: (rate: number) => number,
): Promise<Phase> {
  const target = Math.round(capacity * multiple);
  const r = await sipp('invite-302', csv, s.port, target, seconds, dir, {
    timeoutS: seconds + GRACE_S,
    instances: instancesFor(target),
  });
  // Calls answered within the phase (its whole seconds as sipp ran it, longer than asked when sipp fell behind),
  // per second: answers to a backlog that come after the phase do not count for it.
  const phaseS = Math.max(seconds, Math.round(r.sendingSeconds));
  const inPhase = r.perSecond.slice(0, phaseS).reduce((a, b) => a + b, 0);
  const goodput = Math.round(inPhase / phaseS);
  const p: Phase = {
    server: kind,
    multiple,
    target,
    offeredRate: r.offeredRate,
    instances: r.instances,
    offered: r.offered,
    successful: r.successful,
    successfulInPhase: inPhase,
    failed: r.failed,
    retransmissions: r.retransmissions,
    goodput,
    goodputShare: Math.round((goodput / capacity) * 1000) / 10,
    perSecond: r.perSecond,
    retransPerSecond: r.retransPerSecond,
    failedPerSecond: r.failedPerSecond,
    recoveredAfterS: multiple <= 1 ? recoveredAfter(r.perSecond, r.offeredRate, phaseS) : undefined,
    load: 0,
  };
  process.stderr.write(
    `${kind} ${multiple}x (${target}/s, offered ${p.offeredRate}/s by ${p.instances} sipp): goodput ${goodput}/s = ${p.goodputShare} %, ${p.failed} failed, ${p.retransmissions} retrans; ok/s ${p.perSecond.join(' ')}\n`,
  );
  return p;
}

/** 1x capacity on a fresh process (users registered, nothing else yet) for `seconds`, second by second. */
export async function soak(
  kind: ServerKind,
  s: RunningServer,
  csv: string,
  dir: string,
  capacity: number,
  seconds: number,
  instancesFor: (rate: number) => number,
): Promise<Soak> {
  const r = await sipp('invite-302', csv, s.port, capacity, seconds, dir, {
    timeoutS: seconds + GRACE_S,
    instances: instancesFor(capacity),
  });
  let worst = 0;
  r.retransPerSecond.forEach((v, i) => {
    if (v > r.retransPerSecond[worst]) worst = i;
  });
  const k: Soak = {
    target: capacity,
    offeredRate: r.offeredRate,
    successful: r.successful,
    failed: r.failed,
    retransmissions: r.retransmissions,
    perSecond: r.perSecond,
    retransPerSecond: r.retransPerSecond,
    failedPerSecond: r.failedPerSecond,
    worstSecond: {
      second: worst + 1,
      successful: r.perSecond[worst] ?? 0,
      retransmissions: r.retransPerSecond[worst] ?? 0,
    },
  };
  process.stderr.write(
    `${kind} soak 1x (${capacity}/s) ${seconds} s: ${r.successful} ok, ${r.failed} failed, ${r.retransmissions} retrans\n  ok/s ${r.perSecond.join(' ')}\n  retrans/s ${r.retransPerSecond.join(' ')}\n`,
  );
  await pause(1000);
  return k;
}
