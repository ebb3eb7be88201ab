import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { describe, it } from 'node:test';
import { publicKeyToRaw } from '../../src/identity/keys.ts';
import { signedBytes, signWithKey, verifyEd25519, verifyWithKey } from '../../src/identity/signature.ts';

const CTX = 'test/signature/v1';
const msg = (...b: number[]) => new Uint8Array(b);

describe('signatures: the memory of what verified changes no answer', () => {
  it('a signature verified once still verifies nothing else: other bytes, context, key or signature', () => {
    const a = generateKeyPairSync('ed25519');
    const b = generateKeyPairSync('ed25519');
    // Made outside signWithKey, so the first check really verifies.
    const sig = new Uint8Array(nodeSign(null, signedBytes(CTX, msg(1, 2, 3)), a.privateKey));
    for (let round = 0; round < 2; round++) {
      assert.ok(verifyWithKey(a.publicKey, CTX, msg(1, 2, 3), sig), `round ${round}`);
      assert.ok(!verifyWithKey(a.publicKey, CTX, msg(1, 2, 4), sig));
      assert.ok(!verifyWithKey(a.publicKey, 'test/signature/v2', msg(1, 2, 3), sig));
      assert.ok(!verifyWithKey(b.publicKey, CTX, msg(1, 2, 3), sig));
      const bent = new Uint8Array(sig);
      bent[10] ^= 1;
      assert.ok(!verifyWithKey(a.publicKey, CTX, msg(1, 2, 3), bent));
      assert.ok(!verifyWithKey(a.publicKey, CTX, msg(1, 2, 3), sig.subarray(0, 63)));
    }
  });

  it('a failed check is not remembered: the same forgery fails every time', () => {
    const a = generateKeyPairSync('ed25519');
    const forged = new Uint8Array(64).fill(7);
    for (let i = 0; i < 3; i++) assert.ok(!verifyWithKey(a.publicKey, CTX, msg(5), forged));
  });

  it('a signature made here verifies under its own key only, from a raw key as from a KeyObject', () => {
    const a = generateKeyPairSync('ed25519');
    const b = generateKeyPairSync('ed25519');
    const sig = signWithKey(a.privateKey, CTX, msg(9, 9));
    assert.ok(verifyWithKey(a.publicKey, CTX, msg(9, 9), sig));
    assert.ok(verifyEd25519(publicKeyToRaw(a.publicKey), CTX, msg(9, 9), sig));
    assert.ok(!verifyEd25519(publicKeyToRaw(b.publicKey), CTX, msg(9, 9), sig));
    assert.ok(!verifyWithKey(a.publicKey, CTX, msg(9, 8), sig));
  });

  it('a signature moved onto other bytes does not verify', () => {
    const a = generateKeyPairSync('ed25519');
    const sig = signWithKey(a.privateKey, CTX, msg(1, 2));
    // The same byte stream split differently between message and signature.
    const shifted = new Uint8Array([2, ...sig.subarray(0, 63)]);
    assert.ok(!verifyWithKey(a.publicKey, CTX, msg(1), shifted));
  });
});
