import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKeyPair } from '../../src/identity/certificates.ts';
import { Identity } from '../../src/identity/identity.ts';
import { UserKey, UserSigner } from '../../src/identity/user-key.ts';
import { inCall, offThread, poolNow, signCall, verifyCallSignature } from '../../src/secp2psip/call-verify.ts';
import { SimClock, SystemClock } from '../../src/util/clock.ts';

const CTX = 'secp2psip/test-call/v1';

describe('call signature checks off the thread', () => {
  const signer = UserSigner.fromIdentity(Identity.generate());
  const other = UserSigner.fromIdentity(Identity.generate());
  const msg = new Uint8Array([1, 2, 3, 4]);
  const sig = signer.sign(CTX, msg);

  it('on the worker pool, every verdict is the inline one', async () => {
    const before = offThread.checks;
    const cases: Array<[string, UserKey, string, Uint8Array, Uint8Array]> = [
      ['good', signer.key, CTX, msg, sig],
      ['other message', signer.key, CTX, new Uint8Array([1, 2, 3, 5]), sig],
      ['other context', signer.key, 'secp2psip/other/v1', msg, sig],
      ['other key', other.key, CTX, msg, sig],
      ['flipped bit', signer.key, CTX, msg, Uint8Array.from(sig, (b, i) => (i === 10 ? b ^ 1 : b))],
      ['short signature', signer.key, CTX, msg, sig.subarray(0, 63)],
      ['long signature', signer.key, CTX, msg, new Uint8Array([...sig, 0])],
      ['bad context', signer.key, 'not a context', msg, sig],
    ];
    for (const [what, key, ctx, m, s] of cases) {
      const inline = key.verify(ctx, m, s);
      assert.equal(await verifyCallSignature(key, ctx, m, s, true), inline, what);
      assert.equal(await verifyCallSignature(key, ctx, m, s, false), inline, what);
    }
    assert.equal(cases.filter(([w]) => w === 'good').length, 1);
    assert.ok(await verifyCallSignature(signer.key, CTX, msg, sig, true));
    // Malformed signatures and contexts are refused before any work; the rest went to the pool.
    assert.equal(offThread.checks - before, 6);
  });

  it('keys other than Ed25519 are checked inline', async () => {
    const ec = generateKeyPair('ecdsa-p256');
    const key = UserKey.fromPublicKey(ec.publicKey);
    assert.ok(key.ok);
    const ecSigner = UserSigner.fromPrivateKey(ec.privateKey);
    const s = ecSigner.sign(CTX, msg);
    const before = offThread.checks;
    assert.equal(await verifyCallSignature(key.value, CTX, msg, s, true), true);
    assert.equal(await verifyCallSignature(key.value, CTX, new Uint8Array([0]), s, true), false);
    assert.equal(offThread.checks, before);
  });

  it('a lone call checks inline; with more calls in progress the checks go to the pool, in real time only', async () => {
    const real = new SystemClock();
    const sim = new SimClock();
    let before = offThread.checks;
    await inCall(async () => {
      assert.equal(poolNow(real), false);
      assert.ok(await verifyCallSignature(signer.key, CTX, msg, sig, poolNow(real)));
    });
    assert.equal(offThread.checks, before, 'one call: inline');
    before = offThread.checks;
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const others = [inCall(() => held), inCall(() => held), inCall(() => held)];
    const verdict = await inCall(() => verifyCallSignature(signer.key, CTX, msg, sig, poolNow(real)));
    assert.ok(verdict);
    assert.equal(offThread.checks, before + 1, 'four calls in progress: the pool');
    // A simulation's calls stay on the thread whatever is in progress, and so does a switched-off pool.
    await inCall(async () => {
      assert.equal(poolNow(sim), false);
      offThread.enabled = false;
      try {
        assert.equal(poolNow(real), false);
      } finally {
        offThread.enabled = true;
      }
      assert.equal(poolNow(real), true);
    });
    // The pool holds at most four checks at a time; the next ones are made on the thread.
    await inCall(async () => {
      const b0 = offThread.checks;
      const six = Array.from({ length: 6 }, () => verifyCallSignature(signer.key, CTX, msg, sig, poolNow(real)));
      assert.deepEqual(await Promise.all(six), [true, true, true, true, true, true]);
      assert.equal(offThread.checks - b0, 4);
      assert.equal(poolNow(real), true, 'answered: room again');
    });
    release();
    await Promise.all(others);
    assert.equal(poolNow(real), false, 'all done: inline again');
  });

  it('signatures go to the pool under the same policy and bound, and are the inline ones byte for byte', async () => {
    const real = new SystemClock();
    const inline = signer.sign(CTX, msg);
    const b0 = offThread.signatures;
    assert.deepEqual(await signCall(signer, CTX, msg, false), inline);
    assert.equal(offThread.signatures, b0, 'inline when not pooled');
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const others = [inCall(() => held), inCall(() => held), inCall(() => held)];
    await inCall(async () => {
      const c0 = offThread.checks;
      const s0 = offThread.signatures;
      // Four verifications fill the pool: the signature made meanwhile is made on the thread.
      const checks = Array.from({ length: 4 }, () => verifyCallSignature(signer.key, CTX, msg, sig, poolNow(real)));
      assert.equal(poolNow(real), false, 'pool full');
      const onThread = signCall(signer, CTX, msg, poolNow(real));
      assert.equal(offThread.signatures, s0);
      assert.deepEqual(await Promise.all(checks), [true, true, true, true]);
      assert.equal(offThread.checks - c0, 4);
      assert.deepEqual(await onThread, inline);
      // Room again: signatures on the pool, each one the inline signature, each verifying.
      const msgs = Array.from({ length: 4 }, (_, i) => new Uint8Array([i, 9, 9]));
      const pooled = msgs.map((m) => signCall(signer, CTX, m, poolNow(real)));
      assert.equal(offThread.signatures - s0, 4);
      assert.equal(poolNow(real), false, 'signatures count against the bound');
      const got = await Promise.all(pooled);
      for (let i = 0; i < msgs.length; i++) {
        assert.deepEqual(got[i], signer.sign(CTX, msgs[i]));
        assert.ok(signer.key.verify(CTX, msgs[i], got[i]));
      }
      assert.equal(poolNow(real), true);
    });
    release();
    await Promise.all(others);
    await assert.rejects(signCall(signer, 'not a context', msg, true), /context/);
  });
});
