import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode, encode } from 'cborg';
import {
  checkLocationRecord,
  decodeLocationRecord,
  ed25519Signer,
  encodeLocationRecord,
  recordKey,
  signLocationRecord,
} from '../../src/whanausip/location-record.ts';

const NOW = Date.UTC(2026, 0, 1, 12);

function fresh(seedByte = 7) {
  const signer = ed25519Signer(new Uint8Array(32).fill(seedByte));
  const rec = signLocationRecord(
    { value: 'sip:alice@192.0.2.1:5060', created: NOW - 1000, ttl: 3600, host: '192.0.2.1', port: 7000 },
    signer,
  );
  return { signer, rec, key: recordKey(signer.publicKey), bytes: encodeLocationRecord(rec) };
}

describe('LocationRecord', () => {
  it('round-trips through deterministic CBOR and checks', () => {
    const { rec, key, bytes } = fresh();
    assert.match(key, /^[0-9a-f]{40}$/);
    assert.deepEqual(encodeLocationRecord(rec), bytes);
    const d = decodeLocationRecord(bytes);
    assert.ok(d.ok);
    assert.deepEqual(encodeLocationRecord(d.value), bytes);
    const c = checkLocationRecord(key, bytes, NOW);
    assert.ok(c.ok, c.ok ? '' : c.error);
    assert.equal(c.ok && c.value.value, 'sip:alice@192.0.2.1:5060');
  });

  it('drops a record whose value was changed after signing', () => {
    const { rec, key } = fresh();
    const forged = encodeLocationRecord({ ...rec, value: 'sip:mallory@198.51.100.9:5060' });
    const c = checkLocationRecord(key, forged, NOW);
    assert.equal(c.ok, false);
    assert.equal(!c.ok && c.error, 'bad signature');
  });

  it('drops a validly signed record stored under another key', () => {
    const a = fresh(1);
    const b = fresh(2);
    const c = checkLocationRecord(a.key, b.bytes, NOW);
    assert.equal(!c.ok && c.error, 'key is not the SHA-1 of the record public key');
  });

  it('drops a record signed by another key that claims the victim public key', () => {
    const victim = fresh(1);
    const attacker = ed25519Signer(new Uint8Array(32).fill(9));
    const mine = signLocationRecord(
      { value: 'sip:evil@203.0.113.5', created: NOW, ttl: 60, host: '203.0.113.5', port: 1 },
      attacker,
    );
    const bytes = encodeLocationRecord({ ...mine, publicKey: victim.signer.publicKey });
    assert.equal(checkLocationRecord(victim.key, bytes, NOW).ok, false);
  });

  it('drops expired and far-future records', () => {
    const { key, bytes } = fresh();
    assert.equal(checkLocationRecord(key, bytes, NOW + 3600 * 1000).ok, false);
    assert.equal(checkLocationRecord(key, bytes, NOW - 3600 * 1000).ok, false);
    assert.equal(checkLocationRecord(key, bytes, NOW + 3598 * 1000).ok, true);
  });

  it('never throws on garbage and rejects wrong shapes', () => {
    const { bytes } = fresh();
    const samples: Uint8Array[] = [
      new Uint8Array(0),
      new Uint8Array([0xff, 0x00, 0x12]),
      encode([1, 2, 3]),
      encode({ value: 'x' }),
      new Uint8Array(5000),
      bytes.subarray(0, bytes.length - 3),
    ];
    const obj = decode(bytes) as Record<string, unknown>;
    samples.push(encode({ ...obj, port: 70000 }), encode({ ...obj, extra: 1 }), encode({ ...obj, ttl: -5 }));
    for (const s of samples) {
      const d = decodeLocationRecord(s);
      assert.equal(d.ok, false);
    }
  });
});
