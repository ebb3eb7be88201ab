import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode, encode } from 'cborg';
import {
  decodeFetchReply,
  decodeFetchRequest,
  decodeFindReply,
  decodeFindRequest,
  decodeLeaveRequest,
  decodeNeighborsReply,
  decodeNeighborsRequest,
  decodeRef,
  decodeStoreReply,
  decodeStoreRequest,
  encodeNeighborsReply,
  encodeRef,
} from '../../../src/dht/chord/messages.ts';
import { sha1Id } from '../../../src/dht/store/ring-id.ts';
import type { NodeRef } from '../../../src/rpc/types.ts';
import { ok, type Result } from '../../../src/util/errors.ts';

function ref(i: number): NodeRef {
  const key = new Uint8Array(32).fill(i);
  return { id: sha1Id(key), addr: `127.0.0.1:${4000 + i}`, key };
}

/** The reason a decoder gives for refusing its input (and that it refused). */
function refused<T>(r: Result<T>): string {
  assert.equal(r.ok, false, 'malformed input must be refused');
  return r.ok ? '' : r.error;
}

/** Through real CBOR bytes, as over TLS. */
const wire = (x: unknown): unknown => decode(encode(x));

describe('Chord messages', () => {
  it('round-trip through CBOR', () => {
    const a = ref(1);
    const b = { ...ref(2), admission: new Uint8Array([1, 2, 3]) };
    assert.deepEqual(decodeRef(wire(encodeRef(a))), ok(a));
    assert.deepEqual(decodeRef(wire(encodeRef(b))), ok(b));
    assert.deepEqual(decodeFindRequest(wire({ target: a.id })), ok({ target: a.id }));
    const find = { succs: [a, b].map(encodeRef), next: [encodeRef(b)] };
    assert.deepEqual(decodeFindReply(wire(find)), ok({ succs: [a, b], next: [b] }));
    assert.deepEqual(decodeNeighborsRequest(wire({ notify: true, from: encodeRef(a) })), ok({ notify: true }));
    assert.deepEqual(
      decodeNeighborsReply(wire(encodeNeighborsReply({ pred: null, succs: [a] }))),
      ok({ pred: null, succs: [a] }),
    );
    assert.deepEqual(
      decodeNeighborsReply(wire(encodeNeighborsReply({ pred: a, succs: [], id: b.id }))),
      ok({ pred: a, succs: [], id: b.id }),
    );
    assert.match(refused(decodeNeighborsReply(wire({ pred: null, succs: [], id: 'not a ring id' }))), /bad id/);
    const rec = { key: 'bob.3', value: new Uint8Array([9, 9]), created: 1, ttlMs: 1000, seq: 2, publisher: a.id };
    assert.deepEqual(decodeStoreRequest(wire({ records: [rec] })), ok({ records: [rec] }));
    assert.deepEqual(
      decodeStoreReply(wire({ results: [null, 'DHT_STORE_FULL'] })),
      ok({ results: [null, 'DHT_STORE_FULL'] }),
    );
    assert.deepEqual(decodeFetchRequest(wire({ keys: ['bob', 'bob.1'] })), ok({ keys: ['bob', 'bob.1'] }));
    assert.deepEqual(decodeFetchReply(wire({ records: [rec, null] })), ok({ records: [rec, null] }));
    assert.deepEqual(
      decodeLeaveRequest(wire({ pred: encodeRef(a), succs: [], records: [rec] })),
      ok({ pred: a, succs: [], records: [rec] }),
    );
  });

  it('refuse malformed input with a reason naming the field, never throwing', () => {
    const bad: unknown[] = [
      null,
      undefined,
      42,
      'x',
      [],
      { id: 'zz', addr: 'a', key: new Uint8Array(32) },
      { ...ref(1), key: new Uint8Array(31) },
      { ...ref(1), addr: '' },
      { ...ref(1), id: ref(1).id.toUpperCase() },
    ];
    for (const x of bad) assert.match(refused(decodeRef(x)), /^ref: /);
    assert.match(refused(decodeFindRequest({ target: 'abc' })), /find: bad target/);
    assert.match(refused(decodeFindReply({ succs: [ref(1)], next: [{}] })), /find reply next: ref: bad id/);
    assert.match(
      refused(decodeFindReply({ succs: Array.from({ length: 65 }, () => ref(1)), next: [] })),
      /find reply succs: not a list of at most 64 refs/,
    );
    assert.match(refused(decodeNeighborsRequest({ notify: 'yes' })), /neighbors: bad notify/);
    assert.match(refused(decodeNeighborsReply({ pred: 5, succs: [] })), /neighbors reply pred: ref: not an object/);
    assert.match(refused(decodeStoreRequest({ records: [{ key: 'k' }] })), /store: record: bad value/);
    assert.match(refused(decodeStoreReply({ results: [1] })), /store reply/);
    assert.match(refused(decodeFetchRequest({ keys: [''] })), /fetch: bad key/);
    assert.match(refused(decodeFetchRequest({ keys: Array.from({ length: 300 }, () => 'k') })), /fetch: keys/);
    assert.match(
      refused(decodeFetchReply({ records: [{ key: 'k', value: 'v' }] })),
      /fetch reply: record: bad created/,
    );
    assert.match(refused(decodeLeaveRequest({ pred: null, succs: [], records: 'x' })), /leave: not a list/);
  });
});
