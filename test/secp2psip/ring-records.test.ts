import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { decode as cborgDecode, encode as cborEncode } from 'cborg';
import { defaultValidator } from '../../src/dht/store/validators.ts';
import { RecordStore } from '../../src/dht/store/record-store.ts';
import { expiresAt } from '../../src/dht/store/record.ts';
import { SimClock } from '../../src/util/clock.ts';
import { Identity } from '../../src/identity/identity.ts';
import {
  bootstrapWrittenValidator,
  openRingValue,
  RING_TTL_MS,
  sealRingSet,
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

test('a set-signed record verifies alone at its holder; a reader of the whole set verifies one signature', () => {
  const boot = Identity.generate();
  const keys = [boot.bundle.sig];
  const entries = ['bob', 'bob.1', 'bob.2', 'bob.3', 'bob.4', 'bob.5'].map((key, i) => ({
    key,
    payload: new Uint8Array([i, 1, 2]),
  }));
  const values = sealRingSet(boot, entries, 1000);
  const envs = values.map((v) => {
    const e = openRingValue(v);
    assert.ok(e.ok);
    return e.value;
  });
  assert.ok(
    envs.every((e) => e.set !== undefined && Buffer.compare(e.sig, envs[0].sig) === 0),
    'one signature',
  );
  // Each record alone, at a node that has seen nothing of the set (a holder).
  for (const [i, e] of entries.entries())
    assert.equal(new VerifiedEnvelopes().check(e.key, envs[i], keys), true, e.key);
  // A reader of all of them: one Ed25519 verification, the other records only hashed.
  const v = bootstrapWrittenValidator(keys, defaultValidator());
  const rec = (key: string, value: Uint8Array) => ({
    key,
    value,
    created: 1000,
    ttlMs: 60_000,
    seq: 0,
    publisher: 'p',
  });
  for (const [i, e] of entries.entries()) assert.equal(v.validate(rec(e.key, values[i]), 1000), null);
  // Moved to another key, or its payload, time or path changed: refused, by a fresh node and by the reader.
  const other = { ...envs[1], p: new Uint8Array([9, 9]) };
  const later = { ...envs[1], at: 1001 };
  const path = Uint8Array.from(envs[1].set as Uint8Array);
  path[5] ^= 1;
  const bent = { ...envs[1], set: path };
  const swapped = { ...envs[1], set: envs[2].set };
  for (const [key, env] of [
    ['bob.2', envs[1]],
    ['bob.1', other],
    ['bob.1', later],
    ['bob.1', bent],
    ['bob.1', swapped],
  ] as const) {
    assert.equal(new VerifiedEnvelopes().check(key, env, keys), false, `fresh: ${key}`);
    assert.notEqual(v.validate(rec(key, cborEncode(env)), 1000), null, `reader: ${key}`);
  }
  // Signed by a bootstrap nobody knows: refused although the path folds to its signed root.
  assert.equal(new VerifiedEnvelopes().check('bob', envs[0], [Identity.generate().bundle.sig]), false);
  // A one-record signature over the root is not a set signature, nor the other way round.
  const single = openRingValue(sealRingValue(boot, 'bob', entries[0].payload, 1000));
  assert.ok(single.ok);
  assert.equal(new VerifiedEnvelopes().check('bob', { ...single.value, set: envs[0].set }, keys), false);
  const { set: _dropped, ...unset } = envs[0];
  assert.equal(new VerifiedEnvelopes().check('bob', unset, keys), false);
});

test('a set of one record, and sets of odd sizes, verify record by record', () => {
  const boot = Identity.generate();
  const keys = [boot.bundle.sig];
  for (const size of [1, 2, 3, 7, 11, 12]) {
    const entries = Array.from({ length: size }, (_, i) => ({ key: `u.${i}`, payload: new Uint8Array([i]) }));
    sealRingSet(boot, entries, 5).forEach((v, i) => {
      const e = openRingValue(v);
      assert.ok(e.ok);
      assert.equal(new VerifiedEnvelopes().check(`u.${i}`, e.value, keys), true, `${i} of ${size}`);
    });
  }
});

test('openRingValue reads every envelope a bootstrap makes exactly as cborg does, and refuses non-deterministic encodings', () => {
  const boot = Identity.generate();
  const sizes = [0, 1, 23, 24, 255, 256, 400, 70_000];
  const made = [
    ...sizes.map((n) => sealRingValue(boot, 'alice', new Uint8Array(n).fill(n & 0xff), 1_700_000_000_000 + n)),
    ...sealRingSet(
      boot,
      sizes.map((n, i) => ({ key: `carol.${i}`, payload: new Uint8Array(n).fill(7) })),
      1_700_000_000_123,
    ),
  ];
  for (const bytes of [...made, ...made.map((b) => Buffer.from(b))]) {
    const e = openRingValue(bytes);
    assert.ok(e.ok, 'a bootstrap-made envelope reads');
    const ref = cborgDecode(bytes, { strict: true, rejectDuplicateMapKeys: true }) as Record<string, unknown>;
    assert.deepEqual(Object.keys(e.value).sort(), Object.keys(ref).sort());
    for (const k of Object.keys(ref))
      if (ref[k] instanceof Uint8Array) assert.ok(Buffer.from(ref[k] as Uint8Array).equals(e.value[k as 'p']), k);
      else assert.equal(e.value[k as 'at'], ref[k]);
  }
  // The same fields as an indefinite-length map (0xbf ... 0xff): not deterministic CBOR, never made by a bootstrap.
  const good = made[3];
  assert.equal(good[0], 0xa4, 'a definite map of four');
  const indefinite = new Uint8Array([0xbf, ...good.subarray(1), 0xff]);
  assert.ok(cborgDecode(indefinite, { strict: true }), 'cborg alone would take it');
  assert.equal(openRingValue(indefinite).ok, false);
  // A non-minimal length, trailing bytes, a duplicate key, undefined for `set`, and truncation are refused.
  const nonMinimal = new Uint8Array([0xb8, 0x04, ...good.subarray(1)]);
  assert.equal(openRingValue(nonMinimal).ok, false);
  assert.equal(openRingValue(new Uint8Array([...good, 0])).ok, false);
  const env = openRingValue(good);
  assert.ok(env.ok);
  const withUndef = new Uint8Array([0xa5, ...good.subarray(1), 0x63, ...Buffer.from('set'), 0xf7]);
  assert.equal(openRingValue(withUndef).ok, false);
  const dup = new Uint8Array([0xa5, ...good.subarray(1), 0x62, ...Buffer.from('at'), 0x01]);
  assert.equal(openRingValue(dup).ok, false);
  for (let cut = 0; cut < good.length; cut += 17) assert.equal(openRingValue(good.subarray(0, cut)).ok, false);
  assert.equal(openRingValue('not bytes').ok, false);
});

test('a validator reads a value again from its bytes when they changed under the same object', () => {
  const boot = Identity.generate();
  const keys = [boot.bundle.sig];
  const v = bootstrapWrittenValidator(keys, defaultValidator());
  const value = sealRingValue(boot, 'alice', new Uint8Array(64).fill(5), 1000);
  const rec = { key: 'alice', value, created: 1000, ttlMs: 60_000, seq: 0, publisher: 'p' };
  const first = openRingValue(value);
  assert.ok(first.ok);
  assert.equal(v.validate(rec, 1000), null);
  assert.equal(v.expiresBy?.(rec), 1000 + RING_TTL_MS);
  // One payload byte changed in place: a new reading, and the signature no longer holds.
  const at = value.indexOf(5); // the first payload byte
  value[at] ^= 1;
  assert.notEqual(v.validate(rec, 1000), null, 'the signature no longer holds');
  const second = openRingValue(value);
  assert.ok(second.ok);
  assert.notDeepEqual(second.value.p, first.value.p);
  assert.notEqual(v.validate(rec, 1000), null);
  // Made unreadable in place: refused, and readable again once restored.
  const saved = value[0];
  value[0] = 0xff;
  assert.equal(openRingValue(value).ok, false);
  assert.notEqual(v.validate(rec, 1000), null, 'unreadable');
  assert.equal(v.expiresBy?.(rec), -1 + RING_TTL_MS);
  value[0] = saved;
  value[at] ^= 1;
  assert.ok(openRingValue(value).ok);
  assert.equal(v.validate(rec, 1000), null);
});
