import { OverlayError } from '../../util/errors.ts';

/**
 * Whanau parameters (seed 003 Appendix A; Whanau, NSDI 2010, section 4).
 *
 * Choices, for n honest nodes in a fast-mixing social graph:
 * - w (walk length) = max(4, ceil(ln n)): fast-mixing graphs mix in O(log n)
 *   steps; longer walks only raise the chance of escaping over an attack edge.
 * - r_d = r_f = r_s = base, with base about sqrt(3 n): a key k lands in
 *   succ(f) for the finger f before it with probability about
 *   1 - exp(-r_s r_d / n) = 1 - e^-3 (95%), and TRY/LOOKUP retries cover the
 *   rest. This is the O(sqrt(n) log n) table of the paper with a small constant.
 * - t = 3: each successor sample covers about t n / r_d keys after the id,
 *   while the closest layer-0 finger sits about n / r_f keys before a key; with
 *   r_d = r_f, t = 3 leaves the gap uncovered only with probability e^-3.
 * - l = 2 layers: one extra layer already answers the key-clustering attack
 *   (honest layer-1 ids copy the Sybils' clustered layer-0 ids); more layers
 *   cost r_f + r_s t entries each.
 * - tryLimit = 4 QUERYs per TRY, lookupLimit = 10 TRYs per LOOKUP: a lookup of
 *   an absent key ends with "not found" after at most 40 QUERYs + 9 TRYs.
 * - setup period p = 15 min (seed 003 section 3.3.1), skew tolerance 30 s
 *   (section 4.6), query tokens valid one period.
 */
export interface WhanauParams {
  /** Random walk length. */
  w: number;
  /** db samples (SAMPLE-RECORDS). */
  rd: number;
  /** Fingers per layer. */
  rf: number;
  /** Successor walks per layer. */
  rs: number;
  /** Records taken from each successor walk (SUCCESSORS-SAMPLE). */
  t: number;
  /** Layers l. */
  layers: number;
  tryLimit: number;
  lookupLimit: number;
  /** SETUP starts when UTC is a multiple of this (ms). */
  periodMs: number;
  /** How long a request for a not-yet-reached setup phase waits (clock skew tolerance). */
  skewMs: number;
  /** Lifetime of a query token. */
  tokenTtlMs: number;
  /** Time a peer that failed a walk request stays inactive. */
  inactiveMs: number;
  /** Per-request timeout for RPCs the node sends. */
  rpcTimeoutMs: number;
}

export function defaultParams(expectedNodes: number, overrides: Partial<WhanauParams> = {}): Readonly<WhanauParams> {
  const n = Math.max(2, expectedNodes);
  const base = Math.max(8, Math.ceil(Math.sqrt(3 * n)));
  return validateParams({
    w: Math.max(4, Math.ceil(Math.log(n))),
    rd: base,
    rf: base,
    rs: base,
    t: 3,
    layers: 2,
    tryLimit: 4,
    lookupLimit: 10,
    periodMs: 15 * 60_000,
    skewMs: 30_000,
    tokenTtlMs: 15 * 60_000,
    inactiveMs: 60_000,
    rpcTimeoutMs: 5_000,
    ...overrides,
  });
}

const LIMITS: Record<keyof WhanauParams, [number, number]> = {
  w: [0, 100],
  rd: [1, 1_000_000],
  rf: [1, 1_000_000],
  rs: [1, 1_000_000],
  t: [1, 1000],
  layers: [1, 32],
  tryLimit: [1, 10_000],
  lookupLimit: [1, 10_000],
  periodMs: [1000, 7 * 24 * 3600_000],
  skewMs: [0, 3600_000],
  tokenTtlMs: [1000, 7 * 24 * 3600_000],
  inactiveMs: [0, 24 * 3600_000],
  rpcTimeoutMs: [1, 3600_000],
};

/** Validate once, freeze: configuration errors surface at start-up. */
export function validateParams(p: WhanauParams): Readonly<WhanauParams> {
  for (const [name, [min, max]] of Object.entries(LIMITS)) {
    const v = p[name as keyof WhanauParams];
    if (!Number.isInteger(v) || v < min || v > max)
      throw new OverlayError('BAD_CONFIG', `whanau parameter ${name} must be an integer in [${min}, ${max}], got ${v}`);
  }
  return Object.freeze({ ...p });
}

/** Routing-table entries one node holds: db + per layer (fingers + successor records). */
export function tableEntries(p: WhanauParams): number {
  return p.rd + p.layers * (p.rf + p.rs * p.t);
}
