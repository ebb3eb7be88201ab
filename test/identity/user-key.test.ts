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
});
