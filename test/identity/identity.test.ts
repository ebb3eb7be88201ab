import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeBundle, encodeBundle } from '../../src/identity/bundle.ts';
import { isNodeId, nodeIdFromKey, sha1Hex, sha256Hex } from '../../src/identity/fingerprint.ts';
import { Identity } from '../../src/identity/identity.ts';
import { decodeSigned, encodeSigned, verify, verifyObject } from '../../src/identity/verify.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { SeededRandom } from '../../src/util/random.ts';

const dir = mkdtempSync(join(tmpdir(), 'secp2psip-identity-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('Identity', () => {
  it('saves with mode 0600 in a 0700 directory and reloads the same keys', () => {
    const id = Identity.generate();
    const home = join(dir, 'a', 'keys');
    const file = id.save(home);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(home).mode & 0o777, 0o700);
    const again = Identity.load(home);
    assert.deepEqual(again.bundle, id.bundle);
    const sig = again.sign('test/ctx', new Uint8Array([1, 2, 3]));
    assert.ok(verify(id.bundle, 'test/ctx', new Uint8Array([1, 2, 3]), sig));
    // Loading by file name works too, and loadOrCreate keeps the existing identity.
    assert.deepEqual(Identity.load(file).bundle, id.bundle);
    assert.deepEqual(Identity.loadOrCreate(home).bundle, id.bundle);
    // Saving again replaces the file atomically: no temp files are left behind.
    Identity.generate().save(home);
    assert.notDeepEqual(Identity.load(home).bundle, id.bundle);
    assert.deepEqual(readdirSync(home), ['identity.pem']);
    assert.deepEqual(
      readFileSync(file, 'utf8').match(/BEGIN PRIVATE KEY/g)?.length,
      2,
      'two PKCS#8 blocks (Ed25519, X25519)',
    );
  });

  it('loadOrCreate creates a new identity once, and never replaces one on disk', () => {
    const home = join(dir, 'fresh');
    const a = Identity.loadOrCreate(home);
    const b = Identity.loadOrCreate(home);
    assert.deepEqual(a.bundle, b.bundle);
    assert.equal(statSync(join(home, 'identity.pem')).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(home), ['identity.pem'], 'no temp files left');
  });

  it('refuses key files readable by others, and garbage', () => {
    const home = join(dir, 'loose');
    const file = Identity.generate().save(home);
    chmodSync(file, 0o644);
    assert.throws(
      () => Identity.load(home),
      (e) => isOverlayError(e, 'IDENTITY_BAD_KEY'),
    );
    const bad = join(dir, 'bad.pem');
    writeFileSync(bad, 'not a key', { mode: 0o600 });
    assert.throws(
      () => Identity.load(bad),
      (e) => isOverlayError(e, 'IDENTITY_BAD_KEY'),
    );
    assert.throws(
      () => Identity.load(join(dir, 'nowhere')),
      (e) => isOverlayError(e, 'IDENTITY_BAD_KEY'),
    );
  });
});

describe('domain-separated signatures', () => {
  const id = Identity.generate();
  const other = Identity.generate();
  const msg = new TextEncoder().encode('INVITE sip:bob@example.org');

  it('verify with the bundle, the raw key and the KeyObject', () => {
    const sig = id.sign('secp2psip/invite', msg);
    assert.equal(sig.length, 64);
    assert.ok(verify(id.bundle, 'secp2psip/invite', msg, sig));
    assert.ok(verify(id.bundle.sig, 'secp2psip/invite', msg, sig));
    assert.ok(verify(id.publicSigningKey, 'secp2psip/invite', msg, sig));
  });

  it('a signature for one context never verifies for another, another key, or a tampered message', () => {
    const sig = id.sign('secp2psip/invite', msg);
    assert.equal(verify(id.bundle, 'secp2psip/redirect', msg, sig), false);
    assert.equal(verify(other.bundle, 'secp2psip/invite', msg, sig), false);
    for (let i = 0; i < msg.length; i++) {
      const t = Uint8Array.from(msg);
      t[i] ^= 1;
      assert.equal(verify(id.bundle, 'secp2psip/invite', t, sig), false);
    }
    for (let i = 0; i < 64; i++) {
      const s = Uint8Array.from(sig);
      s[i] ^= 0x80;
      assert.equal(verify(id.bundle, 'secp2psip/invite', msg, s), false);
    }
    // Context/message boundary cannot be shifted: ("ab", "c...") differs from ("a", "bc...").
    const s2 = id.sign('ab', new TextEncoder().encode('cd'));
    assert.equal(verify(id.bundle, 'a', new TextEncoder().encode('bcd'), s2), false);
  });

  it('never throws on junk keys or signatures', () => {
    const rnd = new SeededRandom(4);
    for (let i = 0; i < 100; i++) {
      assert.equal(verify(rnd.bytes(rnd.int(40)), 'x', msg, rnd.bytes(rnd.int(70))), false);
    }
    assert.equal(verify(id.bundle, 'bad context with spaces', msg, id.sign('ok', msg)), false);
    assert.equal(verify({} as never, 'ok', msg, new Uint8Array(64)), false);
    assert.throws(() => id.sign('', msg));
  });

  it('signs structured objects deterministically (canonical CBOR)', () => {
    const a = id.signObject('rec', { b: 2, a: 1, nested: { z: new Uint8Array([1]), y: 'v' } });
    const b = id.signObject('rec', { nested: { y: 'v', z: new Uint8Array([1]) }, a: 1, b: 2 });
    assert.deepEqual(a.body, b.body);
    const r = verifyObject(id.bundle, 'rec', a.body, a.sig);
    assert.ok(r.ok);
    assert.deepEqual(r.value, { a: 1, b: 2, nested: { y: 'v', z: new Uint8Array([1]) } });
    assert.equal(verifyObject(id.bundle, 'other', a.body, a.sig).ok, false);
    const env = encodeSigned(id, 'rec', { x: 1 });
    const d = decodeSigned(env, id.bundle, 'rec');
    assert.ok(d.ok);
    assert.deepEqual(d.value, { x: 1 });
    assert.equal(decodeSigned(env, other.bundle, 'rec').ok, false);
    assert.equal(decodeSigned(env.subarray(1), id.bundle, 'rec').ok, false);
  });
});

describe('bundle and fingerprints', () => {
  it('bundle encoding is deterministic and decoding never throws', () => {
    const id = Identity.generate();
    const enc = encodeBundle(id.bundle);
    assert.equal(enc.length, 70);
    const dec = decodeBundle(enc);
    assert.ok(dec.ok);
    assert.deepEqual(dec.value, id.bundle);
    for (let cut = 0; cut < enc.length; cut++) assert.equal(decodeBundle(enc.subarray(0, cut)).ok, false);
    const rnd = new SeededRandom(11);
    for (let i = 0; i < 200; i++) decodeBundle(rnd.bytes(rnd.int(90)));
    // About half of all 32-byte strings are not Ed25519 points (RFC 8032 section 5.1.3): refused.
    let refused = 0;
    for (let i = 0; i < 100; i++)
      if (!decodeBundle(encodeBundle({ sig: rnd.bytes(32), kem: rnd.bytes(32) })).ok) refused++;
    assert.ok(refused > 20 && refused < 80, `refused ${refused}`);
  });

  it('fingerprints: SHA-1 / SHA-256 hex and 160-bit node ids', () => {
    assert.equal(sha1Hex(new TextEncoder().encode('abc')), 'a9993e364706816aba3e25717850c26c9cd0d89d');
    assert.equal(
      sha256Hex(new TextEncoder().encode('abc')),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    const id = Identity.generate();
    assert.ok(isNodeId(id.id));
    assert.equal(id.id, nodeIdFromKey(id.bundle));
    assert.equal(id.id, sha1Hex(id.bundle.sig));
    assert.notEqual(nodeIdFromKey(Identity.generate().bundle), id.id);
  });
});

describe('identity from seeds', () => {
  it('is the RFC 8032 / RFC 7748 key of the seed, whatever the import path', () => {
    const seed = new Uint8Array(32).map((_, i) => i * 7 + 1);
    const kem = new Uint8Array(32).map((_, i) => 255 - i);
    const id = Identity.fromSeeds(seed, kem);
    // The same key through OpenSSL's PKCS#8 decoder (RFC 8410 section 7).
    const der = (p: string, s: Uint8Array) =>
      createPrivateKey({ key: Buffer.concat([Buffer.from(p, 'hex'), s]), format: 'der', type: 'pkcs8' });
    const raw = (k: ReturnType<typeof createPublicKey>) =>
      Buffer.from(k.export({ format: 'jwk' }).x as string, 'base64url');
    assert.ok(raw(createPublicKey(der('302e020100300506032b657004220420', seed))).equals(Buffer.from(id.bundle.sig)));
    assert.ok(raw(createPublicKey(der('302e020100300506032b656e04220420', kem))).equals(Buffer.from(id.bundle.kem)));
    // RFC 8032 section 7.1 TEST 1: this seed has this public key.
    const t1 = Identity.fromSeeds(
      Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'),
      kem,
    );
    assert.equal(
      Buffer.from(t1.bundle.sig).toString('hex'),
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    );
    assert.throws(() => Identity.fromSeeds(seed.subarray(0, 31), kem), /32 bytes/);
  });
});
