import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { encode as cborEncode } from 'cborg';
import { defaultValidator } from '../../src/dht/store/validators.ts';
import { Identity } from '../../src/identity/identity.ts';
import {
  bootstrapWrittenValidator,
  openRingValue,
  sealRingValue,
  VerifiedEnvelopes,
} from '../../src/secp2psip/ring-records.ts';

test('an envelope the node signed itself is remembered as verified by its own validator only', () => {
  const boot = Identity.generate();
  const keys = [boot.bundle.sig];
  const mine = bootstrapWrittenValidator(keys, defaultValidator());
  const other = bootstrapWrittenValidator(keys, defaultValidator());
  const good = sealRingValue(boot, 'alice', new Uint8Array([1, 2, 3]), 1000, mine);
  const env = openRingValue(good);
  assert.ok(env.ok);
  const rec = (value: Uint8Array) => ({ key: 'alice', value, created: 1000, ttlMs: 60_000, seq: 0, publisher: 'p' });
  assert.equal(mine.validate(rec(good), 1000), null);
  assert.equal(other.validate(rec(good), 1000), null);
  // Same signature over other payload bytes: refused by both (the memory matches exact bytes only).
  const forged = cborEncode({ p: new Uint8Array([9]), at: env.value.at, by: env.value.by, sig: env.value.sig });
  assert.notEqual(mine.validate(rec(forged), 1000), null);
  assert.notEqual(other.validate(rec(forged), 1000), null);
  // Same bytes under another key name: refused.
  assert.notEqual(mine.validate({ ...rec(good), key: 'alice.1' }, 1000), null);
});

test('signedHere enters an envelope without verifying it; only the exact bytes hit', () => {
  const boot = Identity.generate();
  const keys = [boot.bundle.sig];
  const env = { p: new Uint8Array([7]), at: 5, by: boot.bundle.sig, sig: new Uint8Array(64).fill(3) };
  assert.equal(new VerifiedEnvelopes().check('bob', env, keys), false);
  const mem = new VerifiedEnvelopes();
  mem.signedHere('bob', env);
  assert.equal(mem.check('bob', env, keys), true);
  assert.equal(mem.check('bob', { ...env, at: 6 }, keys), false);
  assert.equal(mem.check('bob.1', env, keys), false);
  // The signer must still be a known bootstrap.
  assert.equal(mem.check('bob', env, [Identity.generate().bundle.sig]), false);
});
