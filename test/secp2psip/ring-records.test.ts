import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { encode as cborEncode } from 'cborg';
import { defaultValidator } from '../../src/dht/store/validators.ts';
import { RecordStore } from '../../src/dht/store/record-store.ts';
import { expiresAt } from '../../src/dht/store/record.ts';
import { SimClock } from '../../src/util/clock.ts';
import { Identity } from '../../src/identity/identity.ts';
import {
  bootstrapWrittenValidator,
  openRingValue,
  RING_TTL_MS,
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

test('a stored envelope lives no longer than its bootstrap signed it for, and a stretched or shortened copy never displaces the genuine one', () => {
  const boot = Identity.generate();
  const clock = new SimClock(0);
  const start = clock.wallNow();
  const store = new RecordStore(
    { clock },
    { validators: { '': bootstrapWrittenValidator([boot.bundle.sig], defaultValidator()) } },
  );
  const value = sealRingValue(boot, 'alice', new Uint8Array([1, 2, 3]), start);
  const genuine = { key: 'alice', value, created: start, ttlMs: RING_TTL_MS, seq: 0 };
  assert.ok(store.put(genuine).ok);
  clock.advance(3600_000);
  // An attacker re-stores the same envelope as created now, for 7 days: it is cut to the signed lifetime.
  const stretched = { ...genuine, created: clock.wallNow(), ttlMs: 7 * 24 * 3600_000, seq: 9 };
  const out = store.put(stretched);
  assert.ok(out.ok);
  assert.ok(expiresAt(out.record) <= start + RING_TTL_MS);
  // A copy cut short (created later, ttl 1 ms) does not replace the one that lives longer.
  store.put({ ...genuine, created: clock.wallNow(), ttlMs: 1, seq: 10 });
  clock.advance(1000);
  assert.ok(store.has('alice'));
  // After the signed lifetime no copy is held, however it was stretched.
  clock.advance(RING_TTL_MS);
  assert.equal(store.get('alice'), undefined);
  const late = store.put({ ...genuine, created: clock.wallNow(), ttlMs: 7 * 24 * 3600_000, seq: 11 });
  assert.ok(!late.ok);
  assert.equal(store.get('alice'), undefined);
});
