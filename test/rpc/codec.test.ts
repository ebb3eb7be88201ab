import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeMessage,
  decodePayload,
  ERR_BUSY,
  encodeError,
  encodeHello,
  encodePayload,
  encodeRequest,
  encodeResponse,
  MSG_ERROR,
  MSG_HELLO,
  MSG_REQUEST,
  MSG_RESPONSE,
} from '../../src/rpc/codec.ts';
import { SeededRandom } from '../../src/util/random.ts';

/** Strip the 4-byte length prefix that encode* includes. */
const body = (frame: Buffer) => {
  assert.equal(frame.readUInt32BE(0), frame.length - 4);
  return frame.subarray(4);
};

test('payload round trip keeps types and bytes', () => {
  const v = { b: 1, a: new Uint8Array([1, 2, 3]), list: [1.5, -3, 'x', true, null], nested: { z: 'é', y: 2 ** 40 } };
  const r = decodePayload(encodePayload(v));
  assert.ok(r.ok);
  assert.deepEqual(r.value, v);
});

test('encoding is deterministic regardless of key insertion order, undefined fields dropped', () => {
  const a = encodePayload({ x: 1, yy: 2, a: { q: 1, p: 2 } });
  const b = encodePayload({ a: { p: 2, q: 1 }, yy: 2, x: 1, gone: undefined });
  assert.deepEqual(a, b);
});

test('undefined becomes null (or is left out as a field), so any handler result decodes', () => {
  assert.deepEqual(decodePayload(encodePayload(undefined)), { ok: true, value: null });
  assert.deepEqual(decodePayload(encodePayload([1, undefined])), { ok: true, value: [1, null] });
  assert.deepEqual(decodePayload(encodePayload({ a: undefined, b: 1 })), { ok: true, value: { b: 1 } });
});

test('non-canonical and hostile CBOR is refused, never thrown', () => {
  const cases = [
    '1817', // 23 encoded in two bytes: not minimal
    '9f01ff', // indefinite-length array
    'a2616101616102', // duplicate key
    'f7', // undefined
    '9bffffffffffffffff', // absurd array length
    'a1695f5f70726f746f5f5fa1617801', // {"__proto__": {x: 1}}
    '0102', // trailing bytes
    '', // nothing
    '5a00000010', // byte string longer than the input
  ];
  for (const hex of cases) {
    const r = decodePayload(Buffer.from(hex, 'hex'));
    assert.equal(r.ok, false, hex);
  }
  const deep = Buffer.concat([Buffer.alloc(100_000, 0x81), Buffer.from([0])]);
  assert.equal(decodePayload(deep).ok, false);
});

test('messages round trip', () => {
  const key = new Uint8Array(32).fill(7);
  const req = decodeMessage(body(encodeRequest(42, 'chord.find_successor', { id: 'ab' })));
  assert.deepEqual(req, {
    ok: true,
    value: { type: MSG_REQUEST, id: 42, method: 'chord.find_successor', payload: { id: 'ab' } },
  });
  const res = decodeMessage(body(encodeResponse(0xffffffff, [1, 2])));
  assert.deepEqual(res, { ok: true, value: { type: MSG_RESPONSE, id: 0xffffffff, payload: [1, 2] } });
  const err = decodeMessage(body(encodeError(7, ERR_BUSY, 'busy', 'DHT_NOT_FOUND')));
  assert.deepEqual(err, {
    ok: true,
    value: { type: MSG_ERROR, id: 7, kind: ERR_BUSY, message: 'busy', code: 'DHT_NOT_FOUND' },
  });
  const ref = { id: 'a'.repeat(40), addr: '127.0.0.1:5000', key };
  const hello = decodeMessage(body(encodeHello(ref)));
  assert.ok(hello.ok && hello.value.type === MSG_HELLO);
  assert.deepEqual(hello.value.ref, ref);
});

test('payloads larger than the scratch area and unencodable payloads', () => {
  const big = new Uint8Array(200_000).fill(5);
  const m = decodeMessage(body(encodeResponse(1, { big })));
  assert.ok(m.ok && m.value.type === MSG_RESPONSE);
  assert.deepEqual(m.value.payload, { big });
  assert.throws(() => encodeRequest(1, 'm', { f: () => 1 }));
  assert.throws(() => encodeResponse(1, Symbol('x')));
});

test('bad method names cannot be encoded', () => {
  assert.throws(() => encodeRequest(1, '', null));
  assert.throws(() => encodeRequest(1, 'm'.repeat(256), null));
});

test('malformed messages are refused', () => {
  const bad = [
    Buffer.from([]),
    Buffer.from([9, 0, 0, 0, 1, 0]), // unknown type
    Buffer.from([MSG_REQUEST, 0, 0]), // truncated header
    Buffer.from([MSG_REQUEST, 0, 0, 0, 1, 0, 0xf6]), // empty method
    Buffer.from([MSG_REQUEST, 0, 0, 0, 1, 9, 0x61]), // method longer than body
    Buffer.from([MSG_ERROR, 0, 0, 0, 1, 1, 0x01]), // error body not a map
    Buffer.concat([Buffer.from([MSG_HELLO]), encodePayload({ id: 'x', addr: 'a:1', key: new Uint8Array(32) })]),
    Buffer.concat([
      Buffer.from([MSG_HELLO]),
      encodePayload({ id: 'a'.repeat(40), addr: 'a:1', key: new Uint8Array(31) }),
    ]),
  ];
  for (const b of bad) assert.equal(decodeMessage(b).ok, false, b.toString('hex'));
});

test('fuzz: random and mutated messages never throw', () => {
  const rnd = new SeededRandom(1234);
  const seeds = [
    body(encodeRequest(1, 'put', { k: 'v', b: new Uint8Array(8) })),
    body(encodeResponse(2, [1, 'two', { three: 3 }])),
    body(encodeError(3, 1, 'boom')),
    body(encodeHello({ id: 'b'.repeat(40), addr: 'h:1', key: new Uint8Array(32) })),
  ];
  for (let i = 0; i < 20_000; i++) {
    const base = seeds[i % seeds.length];
    const b = Buffer.from(base);
    const flips = 1 + rnd.int(4);
    for (let j = 0; j < flips; j++) b[rnd.int(b.length)] = rnd.int(256);
    const cut = rnd.int(4) === 0 ? b.subarray(0, rnd.int(b.length + 1)) : b;
    decodeMessage(cut);
    const rand = Buffer.alloc(rnd.int(64));
    for (let j = 0; j < rand.length; j++) rand[j] = rnd.int(256);
    decodeMessage(rand);
  }
});
