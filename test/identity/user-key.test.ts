import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.ts';
import { isEd25519Point } from '../../src/identity/keys.ts';
import { UserKey, UserSigner } from '../../src/identity/user-key.ts';

const spkiOf = (raw: Uint8Array) =>
  new Uint8Array(Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(raw)]));

/** 32 bytes whose y has no x on the curve (about half of all y values). */
function notAPoint(): Uint8Array {
  for (let y = 2; ; y++) {
    const raw = new Uint8Array(32);
    raw[0] = y;
    if (!isEd25519Point(raw)) return raw;
  }
}

describe('user keys: the curve-point check, and what skipping it may not change', () => {
  it('a good key decodes with or without the check and verifies the same signatures', () => {
    const id = Identity.generate();
    const signer = UserSigner.fromIdentity(id);
    const sig = signer.sign('test/user-key/v1', new Uint8Array([1, 2, 3]));
    const spki = signer.key.encode();
    for (const check of [true, false]) {
      const k = UserKey.decode(spki, check);
      assert.ok(k.ok, `checkPoint ${check}`);
      assert.ok(k.value.verify('test/user-key/v1', new Uint8Array([1, 2, 3]), sig));
      assert.ok(!k.value.verify('test/user-key/v1', new Uint8Array([1, 2, 4]), sig));
    }
  });

  it('bytes that are not a curve point are refused by the check, and verify nothing without it', () => {
    const raw = notAPoint();
    const checked = UserKey.decode(spkiOf(raw));
    assert.ok(!checked.ok && /bad Ed25519 key/.test(checked.error));
    const unchecked = UserKey.decode(spkiOf(raw), false);
    if (!unchecked.ok) return; // refused at import: nothing to verify with
    // Signatures of other keys over the same bytes, and junk, never verify under it.
    const msg = new Uint8Array([9, 9, 9]);
    for (let i = 0; i < 20; i++) {
      const sig = UserSigner.fromIdentity(Identity.generate()).sign('test/user-key/v1', msg);
      assert.ok(!unchecked.value.verify('test/user-key/v1', msg, sig));
    }
    assert.ok(!unchecked.value.verify('test/user-key/v1', msg, new Uint8Array(64)));
  });

  it('signAsync (worker pool) gives the bytes sign gives for Ed25519, and valid signatures for every kind', async () => {
    const ed = UserSigner.fromIdentity(Identity.generate());
    for (const n of [0, 1, 63, 64, 400, 5000]) {
      const msg = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
      const sync = ed.sign('test/user-key/v1', msg);
      const pooled = await ed.signAsync('test/user-key/v1', msg);
      assert.ok(pooled instanceof Uint8Array);
      assert.equal(Buffer.compare(pooled, sync), 0, `same bytes for ${n}`);
    }
    // Several at once on the pool: each its own message's signature.
    const msgs = Array.from({ length: 8 }, (_, i) => new Uint8Array([i]));
    const all = await Promise.all(msgs.map((m) => ed.signAsync('test/user-key/v1', m)));
    for (let i = 0; i < msgs.length; i++) assert.deepEqual(all[i], ed.sign('test/user-key/v1', msgs[i]));
    for (const kind of ['ecdsa-p256', 'rsa-2048'] as const) {
      const s = UserSigner.generate(kind);
      const m = new Uint8Array([1, 2, 3]);
      const sig = await s.signAsync('test/user-key/v1', m);
      assert.ok(s.key.verify('test/user-key/v1', m, sig), kind);
      assert.ok(!s.key.verify('test/user-key/v2', m, sig), kind);
    }
    await assert.rejects(ed.signAsync('bad context', new Uint8Array(1)), /context/);
  });
});
