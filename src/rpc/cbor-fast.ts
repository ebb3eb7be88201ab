/**
 * A direct CBOR writer and reader for the values RPC payloads are made of,
 * in front of cborg (codec.ts): plain objects with ASCII keys, arrays, ASCII
 * text, byte strings, safe integers, booleans and null.
 *
 * cborg builds a token tree for every value it encodes and a token per item
 * it decodes; on the call path (a FETCH reply of three records is about 30
 * microseconds to encode and 20 to decode that way) that was a visible share
 * of every RPC. These functions write and read the bytes in one pass.
 *
 * Neither decides anything cborg would decide differently. The writer
 * produces exactly cborg's deterministic encoding (RFC 8949 section 4.2.1:
 * preferred integer and length encodings, map keys ordered by their encoded
 * bytes, which for text keys is shorter first, then bytewise; object fields
 * holding undefined left out, undefined elsewhere written as null) and gives
 * up on anything else (a float, a non-ASCII string, a Map, a class instance,
 * a typed array other than Uint8Array, deep nesting, no room left): the
 * caller then encodes with cborg. The reader accepts only well-formed input
 * of that subset, in the strict form codec.ts asks of cborg (minimal
 * integers and lengths, definite lengths, no undefined, no duplicate keys,
 * no text "__proto__", nothing after the item) and hands everything else,
 * the malformed included, to cborg, whose verdict and message then stand.
 * test/rpc/cbor-fast.test.ts checks both against cborg on generated values
 * and mutated bytes.
 */

/** Returned when the value or the bytes are outside the subset: use cborg. */
export const FALLBACK: unique symbol = Symbol('cbor-fast fallback');

const MAX_DEPTH = 64;
const OUT = Symbol('outside the subset');
const ROOM = Symbol('out of room');

/** Per object shape (its keys in insertion order): the keys in RFC 8949 order with their encoded bytes. */
interface Shape {
  given: string[];
  keys: string[];
  encoded: Uint8Array[];
}
const shapes = new Map<string, Shape>();
const MAX_SHAPES = 512;

function sameKeys(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function orderKeys(keys: string[]): Shape | undefined {
  const id = keys.join('\0');
  const s = shapes.get(id);
  // The joined names only find the entry: keys holding NUL, or none at all, could join alike.
  if (s !== undefined && sameKeys(s.given, keys)) return s;
  for (const k of keys) if (Buffer.byteLength(k) !== k.length) return undefined;
  // ASCII keys: encoded bytes compare as (length, then the characters' codes).
  const sorted = [...keys].sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  const fresh: Shape = { given: keys, keys: sorted, encoded: sorted.map((k) => textBytes(k)) };
  if (s === undefined && shapes.size < MAX_SHAPES) shapes.set(id, fresh);
  return fresh;
}

function textBytes(k: string): Uint8Array {
  const out = Buffer.allocUnsafe(headSize(k.length) + k.length);
  const o = writeHead(out, 0, 0x60, k.length);
  out.write(k, o, 'latin1');
  return out;
}

function headSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9;
}

/** Major type byte `mt` (already shifted) with argument n, minimal length; returns the next offset. */
function writeHead(out: Uint8Array, o: number, mt: number, n: number): number {
  if (n < 24) {
    out[o] = mt | n;
    return o + 1;
  }
  if (n < 0x100) {
    out[o] = mt | 24;
    out[o + 1] = n;
    return o + 2;
  }
  if (n < 0x10000) {
    out[o] = mt | 25;
    out[o + 1] = n >>> 8;
    out[o + 2] = n & 0xff;
    return o + 3;
  }
  if (n < 0x100000000) {
    out[o] = mt | 26;
    out[o + 1] = n >>> 24;
    out[o + 2] = (n >>> 16) & 0xff;
    out[o + 3] = (n >>> 8) & 0xff;
    out[o + 4] = n & 0xff;
    return o + 5;
  }
  const hi = Math.floor(n / 0x100000000);
  const lo = n >>> 0;
  out[o] = mt | 27;
  out[o + 1] = hi >>> 24;
  out[o + 2] = (hi >>> 16) & 0xff;
  out[o + 3] = (hi >>> 8) & 0xff;
  out[o + 4] = hi & 0xff;
  out[o + 5] = lo >>> 24;
  out[o + 6] = (lo >>> 16) & 0xff;
  out[o + 7] = (lo >>> 8) & 0xff;
  out[o + 8] = lo & 0xff;
  return o + 9;
}

class Writer {
  constructor(readonly out: Buffer) {}

  value(v: unknown, o: number, depth: number): number {
    const out = this.out;
    if (o + 9 > out.length) throw ROOM;
    if (v === null || v === undefined) {
      out[o] = 0xf6;
      return o + 1;
    }
    switch (typeof v) {
      case 'boolean':
        out[o] = v ? 0xf5 : 0xf4;
        return o + 1;
      case 'number':
        if (!Number.isSafeInteger(v)) throw OUT; // floats: cborg's encoding
        return v >= 0 ? writeHead(out, o, 0x00, v) : writeHead(out, o, 0x20, -1 - v);
      case 'string': {
        const n = v.length;
        // ASCII only (then bytes = characters): cborg's UTF-8 writer decides anything else.
        if (Buffer.byteLength(v) !== n) throw OUT;
        if (o + 9 + n > out.length) throw ROOM;
        const s = writeHead(out, o, 0x60, n);
        out.write(v, s, n, 'latin1');
        return s + n;
      }
      case 'object':
        break;
      default:
        throw OUT;
    }
    if (depth >= MAX_DEPTH) throw OUT;
    if (v instanceof Uint8Array) {
      const n = v.length;
      if (o + 9 + n > out.length) throw ROOM;
      const s = writeHead(out, o, 0x40, n);
      out.set(v, s);
      return s + n;
    }
    if (Array.isArray(v)) {
      let p = writeHead(out, o, 0x80, v.length);
      for (let i = 0; i < v.length; i++) p = this.value(v[i], p, depth + 1);
      return p;
    }
    if ((v as object).constructor !== Object) throw OUT;
    const r = v as Record<string, unknown>;
    const shape = orderKeys(Object.keys(r));
    if (shape === undefined) throw OUT;
    const { keys, encoded } = shape;
    let n = 0;
    for (let i = 0; i < keys.length; i++) if (r[keys[i]] !== undefined) n++;
    let p = writeHead(out, o, 0xa0, n);
    for (let i = 0; i < keys.length; i++) {
      const x = r[keys[i]];
      if (x === undefined) continue;
      const k = encoded[i];
      if (p + k.length > out.length) throw ROOM;
      out.set(k, p);
      p = this.value(x, p + k.length, depth + 1);
    }
    return p;
  }
}

/** How often each path was taken (the benchmark reports them; a fallback costs a second encoding or decoding). */
export const fastStats = { encoded: 0, encodeFallbacks: 0, noRoom: 0, decoded: 0, decodeFallbacks: 0 };

/**
 * Encode `value` into `out` from offset 0; returns the length written, -1
 * when the value is outside the subset (encode with cborg), or -2 when it
 * does not fit in `out` (try a larger one).
 */
export function encodeFastInto(value: unknown, out: Buffer): number {
  try {
    const n = new Writer(out).value(value, 0, 0);
    fastStats.encoded++;
    return n;
  } catch (e) {
    if (e === OUT) {
      fastStats.encodeFallbacks++;
      return -1;
    }
    if (e === ROOM) {
      fastStats.noRoom++;
      return -2;
    }
    throw e;
  }
}

/**
 * Encode `value` with the direct writer into `scratch`, or into a buffer
 * grown until it fits (up to `max` bytes); the encoding, or undefined when
 * the value is outside the subset or larger than `max` (encode with cborg).
 * A result in `scratch` is only valid until its next use.
 */
export function encodeFast(value: unknown, scratch: Buffer, max: number): Uint8Array | undefined {
  let out = scratch;
  for (;;) {
    const n = encodeFastInto(value, out);
    if (n >= 0) return out.subarray(0, n);
    if (n === -1 || out.length >= max) return undefined;
    out = Buffer.allocUnsafe(Math.min(max, out.length * 4));
  }
}

class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}

  /** The argument of the head at pos (major type already read from `ib`), minimal form only. */
  private arg(ib: number): number {
    const b = this.b;
    const ai = ib & 0x1f;
    const p = this.pos;
    if (ai < 24) {
      this.pos = p + 1;
      return ai;
    }
    if (ai === 24) {
      if (p + 2 > b.length) throw OUT;
      const v = b[p + 1];
      if (v < 24) throw OUT;
      this.pos = p + 2;
      return v;
    }
    if (ai === 25) {
      if (p + 3 > b.length) throw OUT;
      const v = (b[p + 1] << 8) | b[p + 2];
      if (v < 0x100) throw OUT;
      this.pos = p + 3;
      return v;
    }
    if (ai === 26) {
      if (p + 5 > b.length) throw OUT;
      const v = b[p + 1] * 0x1000000 + ((b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4]);
      if (v < 0x10000) throw OUT;
      this.pos = p + 5;
      return v;
    }
    if (ai === 27) {
      if (p + 9 > b.length) throw OUT;
      const hi = b[p + 1] * 0x1000000 + ((b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4]);
      const lo = b[p + 5] * 0x1000000 + ((b[p + 6] << 16) | (b[p + 7] << 8) | b[p + 8]);
      // Minimal: needs more than 32 bits. Safe: below 2^53.
      if (hi === 0 || hi >= 0x200000) throw OUT;
      this.pos = p + 9;
      return hi * 0x100000000 + lo;
    }
    throw OUT; // reserved, or indefinite length
  }

  private text(n: number): string {
    const b = this.b;
    const s = this.pos;
    const e = s + n;
    if (e > b.length) throw OUT;
    let t = '';
    if (n <= 64) {
      // Short text (keys, ids, addresses): built in place, cheaper than a Buffer view and a native call.
      for (let i = s; i < e; i++) {
        const c = b[i];
        if (c >= 0x80) throw OUT;
        t += String.fromCharCode(c);
      }
    } else {
      for (let i = s; i < e; i++) if (b[i] >= 0x80) throw OUT;
      t = Buffer.from(b.buffer, b.byteOffset + s, n).toString('latin1');
    }
    this.pos = e;
    if (t === '__proto__') throw OUT;
    return t;
  }

  value(depth: number): unknown {
    const b = this.b;
    if (this.pos >= b.length || depth >= MAX_DEPTH) throw OUT;
    const ib = b[this.pos];
    switch (ib >> 5) {
      case 0:
        return this.arg(ib);
      case 1: {
        const n = this.arg(ib);
        if (n >= Number.MAX_SAFE_INTEGER) throw OUT; // -1 - n would not be a safe integer (cborg: a BigInt)
        return -1 - n;
      }
      case 2: {
        const n = this.arg(ib);
        const s = this.pos;
        if (s + n > b.length) throw OUT;
        this.pos = s + n;
        return b.slice(s, s + n);
      }
      case 3:
        return this.text(this.arg(ib));
      case 4: {
        const n = this.arg(ib);
        if (n > b.length - this.pos) throw OUT;
        const a = new Array(n);
        for (let i = 0; i < n; i++) a[i] = this.value(depth + 1);
        return a;
      }
      case 5: {
        const n = this.arg(ib);
        if (n > b.length - this.pos) throw OUT;
        const o: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          if (this.pos >= b.length || b[this.pos] >> 5 !== 3) throw OUT;
          const k = this.text(this.arg(b[this.pos]));
          if (Object.hasOwn(o, k)) throw OUT;
          o[k] = this.value(depth + 1);
        }
        return o;
      }
      case 7:
        this.pos++;
        if (ib === 0xf6) return null;
        if (ib === 0xf5) return true;
        if (ib === 0xf4) return false;
        throw OUT; // undefined, other simple values, floats, break
      default:
        throw OUT; // tags
    }
  }
}

/** Decode one whole item of the subset, or FALLBACK (let cborg decode, or refuse, it). Never throws. */
export function decodeFast(bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  try {
    const v = r.value(0);
    if (r.pos === bytes.length) {
      fastStats.decoded++;
      return v;
    }
  } catch (e) {
    if (e !== OUT && !(e instanceof RangeError)) throw e;
  }
  fastStats.decodeFallbacks++;
  return FALLBACK;
}
