/**
 * The SecP2PSIP overlay on the in-memory network for wide-area emulation
 * (src/harness/memory-overlay.ts): one bootstrap and adapters, every message
 * delayed by a fixed one-way latency on a simulated clock.
 */
import type { SipRequest } from '../../src/sip/message.ts';
import { MemoryOverlay, phoneInvite as invite } from '../../src/harness/memory-overlay.ts';

export type { MemoryOverlay };

export const MemnetOverlay = {
  /** Adapters join 2 s apart and the ring settles 10 s; RPCs may take 20 one-way delays. */
  create(o: { latencyMs: number; adapters: number; k: number; n: number; seed?: number }): Promise<MemoryOverlay> {
    return MemoryOverlay.create(o.adapters, {
      latencyMs: o.latencyMs,
      timeoutMs: 20 * o.latencyMs + 2000,
      resolutionMs: 0,
      stabilizeMs: 1000,
      joinGapMs: 2000,
      settleMs: 10_000,
      settleLimitMs: 600_000,
      k: o.k,
      n: o.n,
      seed: o.seed,
      sipAddr: (i) => `10.0.${i >> 8}.${i & 255}:5060`,
    });
  },
};

/** The INVITE a phone registered as `from` sends its adapter for `to`. */
export function phoneInvite(from: string, to: string): SipRequest {
  return invite(from, to, '10.9.0.1:5060', '10.9.0.2:5070');
}
