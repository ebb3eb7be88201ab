import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../util/clock.ts';
import type { Random } from '../../util/random.ts';

/**
 * Query tokens (seed 003 section 4.4). A node hands one out, with its own
 * record, at the end of every random walk that reaches it; the public methods
 * meant to run only at the end of a walk (TRY, GET-ID, SAMPLE-RECORD,
 * SUCCESSORS-SAMPLE) cost a token each. A token is a nonce and an expiry under
 * an HMAC keyed by a secret only the minting node knows, redeemable once, so
 * the work anyone can make a node do is bounded by the walks that reached it.
 */
const NONCE = 12;
const MAC = 16;
export const TOKEN_BYTES = 8 + NONCE + MAC;

export class QueryTokens {
  private readonly secret: Uint8Array;
  private readonly spent = new Map<string, number>();
  private lastSweep = 0;
  private readonly rnd: Random;

  constructor(
    private readonly clock: Clock,
    random: Random,
    private readonly ttlMs: number,
  ) {
    this.secret = random.bytes(32);
    this.rnd = random;
  }

  private mac(body: Uint8Array): Uint8Array {
    return new Uint8Array(createHmac('sha256', this.secret).update(body).digest().subarray(0, MAC));
  }

  mint(): Uint8Array {
    const out = new Uint8Array(TOKEN_BYTES);
    new DataView(out.buffer).setFloat64(0, this.clock.now() + this.ttlMs);
    out.set(this.rnd.bytes(NONCE), 8);
    out.set(this.mac(out.subarray(0, 8 + NONCE)), 8 + NONCE);
    return out;
  }

  /** True once for a genuine, unexpired token; false for anything else. Never throws. */
  redeem(token: unknown): boolean {
    if (!(token instanceof Uint8Array) || token.length !== TOKEN_BYTES) return false;
    const body = token.subarray(0, 8 + NONCE);
    if (!timingSafeEqual(this.mac(body), token.subarray(8 + NONCE))) return false;
    const expires = new DataView(token.buffer, token.byteOffset, 8).getFloat64(0);
    const now = this.clock.now();
    if (!(expires > now)) return false;
    const id = Buffer.from(body).toString('base64');
    if (this.spent.has(id)) return false;
    this.spent.set(id, expires);
    this.sweep(now);
    return true;
  }

  /** Spent tokens are remembered only until they would have expired anyway. */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.ttlMs / 4 && this.spent.size < 100_000) return;
    this.lastSweep = now;
    for (const [id, exp] of this.spent) if (exp <= now) this.spent.delete(id);
  }

  get spentCount(): number {
    return this.spent.size;
  }
}
