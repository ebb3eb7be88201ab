import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { Identity } from '../../src/identity/identity.ts';
import { privateKeyToRaw } from '../../src/identity/keys.ts';
import { ENC_LEN, HINT_LEN, open, recipientHint, SEAL_INFO, seal } from '../../src/identity/seal.ts';
import { SeededRandom } from '../../src/util/random.ts';

const enc = new TextEncoder();
const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });

describe('HPKE seal/open (RFC 9180 base mode, X25519, HKDF-SHA256, AES-128-GCM)', () => {
  const bob = Identity.generate();
  const eve = Identity.generate();
  const pt = enc.encode('INVITE sip:bob@example.org SIP/2.0 ...');
  const aad = enc.encode('caller=alice;call-id=abc');

  it('round trip, with fresh encapsulation each time', () => {
    const s1 = seal(bob.bundle, pt, aad);
    const s2 = seal(bob.bundle, pt, aad);
    assert.equal(s1.length, ENC_LEN + pt.length + 16);
    assert.notDeepEqual(s1, s2);
    const r = open(bob, s1, aad);
    assert.ok(r.ok);
    assert.deepEqual(r.value, pt);
    assert.deepEqual(open(bob.kemKey, s2, aad), { ok: true, value: pt });
    assert.deepEqual(open(bob, seal(bob.bundle.kem, new Uint8Array(0)), new Uint8Array(0)), {
      ok: true,
      value: new Uint8Array(0),
    });
  });

  it('fails on every tampered byte, wrong aad, wrong info, wrong recipient, truncation', () => {
    const s = seal(bob.bundle, pt, aad);
    for (let i = 0; i < s.length; i++) {
      const t = Uint8Array.from(s);
      t[i] ^= 0x01;
      assert.equal(open(bob, t, aad).ok, false, `byte ${i}`);
    }
    assert.equal(open(bob, s, enc.encode('caller=mallory;call-id=abc')).ok, false);
    assert.equal(open(bob, s).ok, false);
    assert.equal(open(bob, s, aad, enc.encode('other protocol')).ok, false);
    assert.equal(open(eve, s, aad).ok, false);
    for (const cut of [0, 10, ENC_LEN, ENC_LEN + 15, s.length - 1])
      assert.equal(open(bob, s.subarray(0, cut), aad).ok, false);
    // An all-zero (small-order) encapsulated key is refused, not used.
    const zero = Uint8Array.from(s);
    zero.fill(0, 0, ENC_LEN);
    assert.equal(open(bob, zero, aad).ok, false);
    const rnd = new SeededRandom(3);
    for (let i = 0; i < 100; i++) assert.equal(open(bob, rnd.bytes(rnd.int(100)), aad).ok, false);
  });

  it('interoperates with @hpke/core in both directions', async () => {
    // Ours -> @hpke/core
    const sealed = seal(bob.bundle, pt, aad);
    const sk = await suite.kem.importKey('raw', privateKeyToRaw(bob.kemKey), false);
    const opened = await suite.open(
      { recipientKey: sk, enc: sealed.slice(0, ENC_LEN), info: SEAL_INFO },
      sealed.slice(ENC_LEN),
      aad,
    );
    assert.deepEqual(new Uint8Array(opened), pt);
    // @hpke/core -> ours
    const pk = await suite.kem.deserializePublicKey(bob.bundle.kem);
    const theirs = await suite.seal({ recipientPublicKey: pk, info: SEAL_INFO }, pt, aad);
    const joined = new Uint8Array(ENC_LEN + theirs.ct.byteLength);
    joined.set(new Uint8Array(theirs.enc), 0);
    joined.set(new Uint8Array(theirs.ct), ENC_LEN);
    assert.deepEqual(open(bob, joined, aad), { ok: true, value: pt });
  });

  it('refuses a malformed recipient key', () => {
    assert.throws(() => seal(new Uint8Array(31), pt));
  });
});

test('recipientHint: names the recipient key, fresh for every message', () => {
  const bob = Identity.generate();
  const carol = Identity.generate();
  const m1 = seal(bob.bundle, new Uint8Array([1]));
  const m2 = seal(bob.bundle, new Uint8Array([1]));
  const h1 = recipientHint(bob.bundle.kem, m1);
  assert.equal(h1.length, HINT_LEN);
  assert.deepEqual(recipientHint(bob.bundle.kem, m1), h1);
  assert.notDeepEqual(recipientHint(bob.bundle.kem, m2), h1, 'unlinkable between messages');
  assert.notDeepEqual(recipientHint(carol.bundle.kem, m1), h1, 'another key does not match');
});
