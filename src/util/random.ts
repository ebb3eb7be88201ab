import { randomBytes, randomFillSync } from 'node:crypto';

/**
 * Injected random source. Cores take a Random so the simulator can be replayed
 * from a seed; daemons use CryptoRandom.
 */
export interface Random {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  bytes(n: number): Uint8Array;
}

/** xoshiro128** seeded through splitmix32: fast, small, reproducible. */
export class SeededRandom implements Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    let x = seed >>> 0;
    const split = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = split();
    this.s1 = split();
    this.s2 = split();
    this.s3 = split();
  }

  private u32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  next(): number {
    return this.u32() / 0x100000000;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (v >>> (8 * j)) & 0xff;
    }
    return out;
  }

  /** A child generator whose stream does not overlap in practice. */
  fork(): SeededRandom {
    return new SeededRandom(this.u32());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * Random source from the OS CSPRNG. Small draws come from a pool refilled 4 KiB
 * at a time: one randomBytes call per draw cost several microseconds in native
 * job set-up, more than the work around it on hot paths (a peer per walk step).
 */
export class CryptoRandom implements Random {
  private readonly pool = Buffer.alloc(4096);
  private at = this.pool.length;

  private take(n: number): Buffer {
    if (this.at + n > this.pool.length) {
      randomFillSync(this.pool);
      this.at = 0;
    }
    const out = this.pool.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  next(): number {
    return this.take(4).readUInt32LE(0) / 0x100000000;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bytes(n: number): Uint8Array {
    // A copy, never a view of the pool; large draws go straight to the OS.
    return n > 256 ? new Uint8Array(randomBytes(n)) : new Uint8Array(this.take(n));
  }
}

/** Fisher-Yates shuffle in place with an injected random source. */
export function shuffle<T>(arr: T[], rnd: Random): T[] {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = rnd.int(i + 1);
    [arr[i], arr[j]] = [arr[j], arr[i]];
  }
  return arr;
}
