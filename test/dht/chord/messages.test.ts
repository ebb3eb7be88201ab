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

function ref(i: number): NodeRef {
  const key = new Uint8Array(32).fill(i);
  return { id: sha1Id(key), addr: `127.0.0.1:${4000 + i}`, key };
}

/** Through real CBOR bytes, as over TLS. */
const wire = (x: unknown): unknown => decode(encode(x));

describe('Chord messages', () => {
  it('round-trip through CBOR', () => {
    const a = ref(1);
    const b = { ...ref(2), admission: new Uint8Array([1, 2, 3]) };
    assert.deepEqual(decodeRef(wire(encodeRef(a))), a);
    assert.deepEqual(decodeRef(wire(encodeRef(b))), b);
    assert.deepEqual(decodeFindRequest(wire({ target: a.id })), { target: a.id });
    const find = { succs: [a, b].map(encodeRef), next: [encodeRef(b)] };
    assert.deepEqual(decodeFindReply(wire(find)), { succs: [a, b], next: [b] });
    assert.deepEqual(decodeNeighborsRequest(wire({ notify: true, from: encodeRef(a) })), { notify: true });
    assert.deepEqual(decodeNeighborsReply(wire(encodeNeighborsReply({ pred: null, succs: [a] }))), {
      pred: null,
      succs: [a],
    });
    assert.deepEqual(decodeNeighborsReply(wire(encodeNeighborsReply({ pred: a, succs: [], id: b.id }))), {
      pred: a,
      succs: [],
      id: b.id,
    });
    assert.equal(decodeNeighborsReply(wire({ pred: null, succs: [], id: 'not a ring id' })), null);
    const rec = { key: 'bob.3', value: new Uint8Array([9, 9]), created: 1, ttlMs: 1000, seq: 2, publisher: a.id };
    assert.deepEqual(decodeStoreRequest(wire({ records: [rec] })), { records: [rec] });
    assert.deepEqual(decodeStoreReply(wire({ results: [null, 'DHT_STORE_FULL'] })), {
      results: [null, 'DHT_STORE_FULL'],
    });
    assert.deepEqual(decodeFetchRequest(wire({ keys: ['bob', 'bob.1'] })), { keys: ['bob', 'bob.1'] });
    assert.deepEqual(decodeFetchReply(wire({ records: [rec, null] })), { records: [rec, null] });
    assert.deepEqual(decodeLeaveRequest(wire({ pred: encodeRef(a), succs: [], records: [rec] })), {
      pred: a,
      succs: [],
      records: [rec],
    });
  });

  it('return null on malformed input instead of throwing', () => {
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
    for (const x of bad) assert.equal(decodeRef(x), null);
    assert.equal(decodeFindRequest({ target: 'abc' }), null);
    assert.equal(decodeFindReply({ succs: [ref(1)], next: [{}] }), null);
    assert.equal(decodeFindReply({ succs: Array.from({ length: 65 }, () => ref(1)), next: [] }), null);
    assert.equal(decodeNeighborsRequest({ notify: 'yes' }), null);
    assert.equal(decodeNeighborsReply({ pred: 5, succs: [] }), null);
    assert.equal(decodeStoreRequest({ records: [{ key: 'k' }] }), null);
    assert.equal(decodeStoreReply({ results: [1] }), null);
    assert.equal(decodeFetchRequest({ keys: [''] }), null);
    assert.equal(decodeFetchRequest({ keys: Array.from({ length: 300 }, () => 'k') }), null);
    assert.equal(decodeFetchReply({ records: [{ key: 'k', value: 'v' }] }), null);
    assert.equal(decodeLeaveRequest({ pred: null, succs: [], records: 'x' }), null);
  });
});
