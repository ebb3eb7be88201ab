import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode as cborDecode, encode as cborEncode, rfc8949EncodeOptions, Token, Type } from 'cborg';
import { decodeFast, encodeFast, encodeFastInto, FALLBACK } from '../../src/rpc/cbor-fast.ts';
import { decodePayload, encodePayload } from '../../src/rpc/codec.ts';
import { SeededRandom } from '../../src/util/random.ts';

/** cborg with the options codec.ts gives it: the reference both directions are compared with. */
const ENCODE = {
  ...rfc8949EncodeOptions,
  ignoreUndefinedProperties: true,
  typeEncoders: { undefined: () => [new Token(Type.null, null)] },
};
const DECODE = { strict: true, allowIndefinite: false, allowUndefined: false, rejectDuplicateMapKeys: true };

function refDecode(b: Uint8Array): { ok: true; value: unknown } | { ok: false } {
  try {
    const value = cborDecode(b, DECODE);
    // codec.ts refuses the text "__proto__" anywhere (its guarded tokenizer).
    if (
      Buffer.from(b).includes(Buffer.from([0x69, ...Buffer.from('__proto__')])) &&
      JSON.stringify(value).includes('__proto__')
    )
      return { ok: false };
    return { ok: true, value };
  } catch {
    return { ok: false };
  }
}

const KEYS = [
  'id',
  'key',
  'addr',
  'admission',
  'records',
  'a',
  'bb',
  'z',
  'created',
  'ttlMs',
  'seq',
  'publisher',
  'é',
  '',
];
const TEXTS = ['', 'x', 'alice.3', '127.0.0.1:5060', 'ü', 'a'.repeat(23), 'b'.repeat(24), 'c'.repeat(300), '\ud800'];
const INTS = [
  0,
  1,
  23,
  24,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  1764780000000,
  2 ** 53 - 1,
  -1,
  -24,
  -25,
  -256,
  -257,
  -(2 ** 32),
  -(2 ** 53 - 1),
];
const ODD = [
  1.5,
  -0,
  2 ** 53,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  10n,
  new Map([['a', 1]]),
  new Uint16Array([1]),
  Object.create(null),
];

function gen(r: SeededRandom, depth: number): unknown {
  const pick = <T>(xs: readonly T[]) => xs[r.int(xs.length)];
  const k = depth > 3 ? r.int(6) : r.int(10);
  switch (k) {
    case 0:
      return pick(INTS);
    case 1:
      return pick(TEXTS);
    case 2:
      return r.bytes(r.int(3) === 0 ? 300 : r.int(30));
    case 3:
      return pick([true, false, null, undefined]);
    case 4:
      return r.int(40) === 0 ? pick(ODD) : pick(INTS);
    case 5:
      return r.int(7) - 3;
    case 6:
    case 7: {
      const o: Record<string, unknown> = {};
      const n = r.int(6);
      for (let i = 0; i < n; i++) o[pick(KEYS)] = gen(r, depth + 1);
      return o;
    }
    default:
      return Array.from({ length: r.int(5) }, () => gen(r, depth + 1));
  }
}

test('the direct writer gives exactly cborg deterministic bytes, or leaves the value to cborg', () => {
  const r = new SeededRandom(18);
  const out = Buffer.alloc(64 * 1024);
  let fast = 0;
  let fell = 0;
  for (let i = 0; i < 5000; i++) {
    const v = gen(r, 0);
    const n = encodeFastInto(v, out);
    let ref: Uint8Array | undefined;
    try {
      ref = cborEncode(v, ENCODE);
    } catch {
      ref = undefined;
    }
    if (n < 0) {
      fell++;
      continue;
    }
    fast++;
    assert.ok(ref, `cborg refuses what the writer wrote (value ${i})`);
    assert.deepEqual(new Uint8Array(out.subarray(0, n)), new Uint8Array(ref));
    // And encodePayload agrees with both.
    assert.deepEqual(new Uint8Array(encodePayload(v as never)), new Uint8Array(ref));
  }
  assert.ok(fast > 3000 && fell > 50, `both paths exercised (fast ${fast}, fallback ${fell})`);
});

test('the writer leaves floats, big integers, non-ASCII text, Maps and odd objects to cborg', () => {
  const out = Buffer.alloc(1024);
  const odd = [1.5, 2 ** 53, 10n, 'é', { é: 1 }, new Map(), new Uint16Array(2), Object.create(null), new Date(0)];
  for (const [i, v] of odd.entries()) assert.equal(encodeFastInto(v, out), -1, `value ${i}`);
  assert.equal(encodeFastInto(new Uint8Array(2000), Buffer.alloc(100)), -2, 'no room: a larger buffer');
  // encodeFast grows the buffer until the value fits, up to its bound, then leaves it to cborg.
  const big = {
    records: Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: new Uint8Array(3000).fill(i) })),
  };
  const grown = encodeFast(big, Buffer.alloc(1024), 1 << 20);
  assert.ok(grown);
  assert.deepEqual(new Uint8Array(grown), new Uint8Array(cborEncode(big, ENCODE)));
  assert.equal(encodeFast(big, Buffer.alloc(1024), 64 * 1024), undefined);
  assert.equal(encodeFast(1.5, Buffer.alloc(1024), 1 << 20), undefined);
  const viaCodec = decodePayload(encodePayload(big));
  assert.ok(viaCodec.ok);
  assert.deepEqual(viaCodec.value, big);
  let deep: unknown = 1;
  for (let i = 0; i < 100; i++) deep = [deep];
  assert.equal(encodeFastInto(deep, out), -1, 'deep nesting: cborg');
});

test('the direct reader agrees with strict cborg on valid and on mutated bytes, falling back on anything doubtful', () => {
  const r = new SeededRandom(1818);
  let decided = 0;
  let fell = 0;
  for (let i = 0; i < 4000; i++) {
    let b: Uint8Array;
    try {
      b = cborEncode(gen(r, 0), ENCODE);
    } catch {
      continue;
    }
    const variants: Uint8Array[] = [b];
    for (let m = 0; m < 4; m++) {
      const c = new Uint8Array(b);
      const at = r.int(c.length);
      c[at] =
        r.int(3) === 0
          ? [0x18, 0x19, 0x1a, 0x1b, 0x5f, 0x7f, 0x9f, 0xbf, 0xf7, 0xff, 0xf9, 0xc1][r.int(12)]
          : r.int(256);
      variants.push(c);
    }
    variants.push(b.subarray(0, r.int(b.length)), Buffer.concat([b, Buffer.from([0])]));
    for (const v of variants) {
      const u8 = new Uint8Array(v);
      const got = decodeFast(u8);
      const ref = refDecode(u8);
      if (got === FALLBACK) {
        fell++;
        continue;
      }
      decided++;
      assert.ok(ref.ok, `decoded what strict cborg refuses: ${Buffer.from(u8).toString('hex')}`);
      assert.deepEqual(got, ref.value);
    }
  }
  assert.ok(decided > 5000 && fell > 2000, `both paths exercised (decided ${decided}, fallback ${fell})`);
});

test('the reader falls back on non-minimal, indefinite, undefined, duplicate keys, __proto__ and trailing bytes', () => {
  const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
  for (const h of [
    '1817', // 23 in two bytes
    '190017', // 23 in three bytes
    '1b0000000000000001', // 1 in nine bytes
    '1b0020000000000000', // 2^53: not a safe integer
    '9fff', // indefinite array
    'f7', // undefined
    'a2616101616102', // {a:1, a:2}
    'a1695f5f70726f746f5f5f01', // {"__proto__": 1}
    '0000', // trailing byte
    '', // nothing
    'f93c00', // half float 1.0
    'c100', // tag
    'a10101', // integer key
    '62c3a9', // non-ASCII text
    '5a00000100', // byte string longer than the input
  ])
    assert.equal(decodeFast(hex(h)), FALLBACK, h);
  // Through codec.ts the refusals stand (cborg's verdict).
  assert.equal(decodePayload(hex('a2616101616102')).ok, false);
  assert.equal(decodePayload(hex('a1695f5f70726f746f5f5f01')).ok, false);
  assert.equal(decodePayload(hex('1817')).ok, false);
  const ok = decodePayload(hex('a3616101626262f5617a1b0000019aee00e900'));
  assert.ok(ok.ok);
  assert.deepEqual(ok.value, { a: 1, bb: true, z: 0x19aee00e900 });
});

test('byte strings decode as copies, not views into the frame', () => {
  const frame = new Uint8Array(Buffer.from('a1616143010203', 'hex'));
  const v = decodeFast(frame) as { a: Uint8Array };
  assert.deepEqual(v.a, new Uint8Array([1, 2, 3]));
  frame[4] = 9;
  assert.equal(v.a[0], 1);
  assert.ok(!Buffer.isBuffer(v.a));
});
