import { createHash } from 'node:crypto';

/**
 * Positions on the 160-bit identifier circle (Stoica et al. 2003, section
 * IV-A), written as 40 lowercase hex digits. Equal-length lowercase hex
 * strings compare like the numbers they spell, so interval tests are plain
 * string comparisons, with no big-number arithmetic on the hot path.
 */
export const ID_BITS = 160;
export const ID_HEX = 40;
const MOD = 1n << 160n;

export function isRingId(s: unknown): s is string {
  if (typeof s !== 'string' || s.length !== ID_HEX) return false;
  for (let i = 0; i < ID_HEX; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** Ring position of a DHT key: SHA-1 of its UTF-8 bytes. */
export function keyPosition(key: string): string {
  return createHash('sha1').update(key, 'utf8').digest('hex');
}

const readPositions = new Map<string, string>();
const MAX_READ_POSITIONS = 16_384;

/**
 * keyPosition, remembered for the keys a node reads again and again: every read of one user asks for the
 * same n + 1 names (its location record and pieces), and hashing them on every call was pure repetition.
 * Bounded, oldest out; for the read path only (stored records have their position kept with them).
 */
export function readPosition(key: string): string {
  let p = readPositions.get(key);
  if (p === undefined) {
    p = keyPosition(key);
    if (readPositions.size >= MAX_READ_POSITIONS) readPositions.delete(readPositions.keys().next().value as string);
    readPositions.set(key, p);
  }
  return p;
}

/** SHA-1 of raw bytes as a ring id (a node id derived from its public key). */
export function sha1Id(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex');
}

/** x in (a, b) on the circle; when a === b the interval is the whole circle but a. */
export function inOpen(x: string, a: string, b: string): boolean {
  if (a < b) return a < x && x < b;
  if (a > b) return x > a || x < b;
  return x !== a;
}

/** x in (a, b] on the circle; when a === b the interval is the whole circle. */
export function inHalfOpen(x: string, a: string, b: string): boolean {
  if (a < b) return a < x && x <= b;
  if (a > b) return x > a || x <= b;
  return true;
}

const HEX = '0123456789abcdef';

function hexVal(c: number): number {
  return c <= 57 ? c - 48 : c - 87;
}

/** (id + 2^i) mod 2^160: the start of finger i (section IV-D). Digit arithmetic, no bigint. */
export function fingerStart(id: string, i: number): string {
  const first = ID_HEX - 1 - (i >> 2);
  let add = 1 << (i & 3);
  let pos = first;
  let digits = '';
  while (pos >= 0 && add > 0) {
    const v = hexVal(id.charCodeAt(pos)) + add;
    digits = HEX[v & 15] + digits;
    add = v >> 4;
    pos--;
  }
  return id.slice(0, pos + 1) + digits + id.slice(first + 1);
}

/**
 * The highest finger index i with start (a + 2^i) in (a, b]: finger i lies in
 * (a, b] exactly when 2^i <= distance(a, b). -1 when a === b.
 */
export function lastFingerCovered(a: string, b: string): number {
  let borrow = 0;
  let top = -1;
  for (let i = ID_HEX - 1; i >= 0; i--) {
    let v = hexVal(b.charCodeAt(i)) - hexVal(a.charCodeAt(i)) - borrow;
    borrow = v < 0 ? 1 : 0;
    if (v < 0) v += 16;
    if (v !== 0) top = (ID_HEX - 1 - i) * 4 + (31 - Math.clz32(v));
  }
  return top;
}

/** Clockwise distance from a to b as a bigint. */
export function distance(a: string, b: string): bigint {
  return (BigInt(`0x${b}`) - BigInt(`0x${a}`) + MOD) % MOD;
}

/** Compare two ids by clockwise distance from `from` (negative if x comes first). */
export function compareFrom(from: string, x: string, y: string): number {
  const gx = x > from ? 0 : 1;
  const gy = y > from ? 0 : 1;
  if (gx !== gy) return gx - gy;
  return x < y ? -1 : x > y ? 1 : 0;
}
