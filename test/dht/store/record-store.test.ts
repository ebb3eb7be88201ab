import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DhtRecord } from '../../../src/dht/store/record.ts';
import { parseRecord } from '../../../src/dht/store/record.ts';
import { RecordStore } from '../../../src/dht/store/record-store.ts';
import { fingerStart, inHalfOpen, inOpen, keyPosition, lastFingerCovered } from '../../../src/dht/store/ring-id.ts';
import { firstWriterValidator, namespaceOf, type RecordValidator } from '../../../src/dht/store/validators.ts';
import { SimClock } from '../../../src/util/clock.ts';

const clock = () => new SimClock(0, 1_000_000);

function rec(key: string, value: string, created: number, ttlMs = 60_000, seq = 0): DhtRecord {
  return { key, value, created, ttlMs, seq };
}

describe('ring ids', () => {
  it('interval tests wrap around the circle', () => {
    const lo = '1'.padStart(40, '0');
    const mid = '8'.padEnd(40, '0');
    const hi = 'f'.repeat(40);
    assert.ok(inOpen(mid, lo, hi));
    assert.ok(!inOpen(lo, mid, hi));
    assert.ok(inOpen(lo, hi, mid)); // wraps
    assert.ok(inHalfOpen(mid, lo, mid));
    assert.ok(!inOpen(mid, lo, mid));
    assert.ok(inHalfOpen(lo, lo, lo)); // the whole circle
    assert.ok(!inOpen(lo, lo, lo));
  });

  it('finger starts and coverage agree with big-number arithmetic', () => {
    const M = 1n << 160n;
    for (let t = 0; t < 300; t++) {
      const id = keyPosition(`id${t}`);
      const i = (t * 7) % 160;
      const want = ((BigInt(`0x${id}`) + (1n << BigInt(i))) % M).toString(16).padStart(40, '0');
      assert.equal(fingerStart(id, i), want);
      const other = keyPosition(`other${t}`);
      const last = lastFingerCovered(id, other);
      for (const j of [last, last + 1].filter((x) => x >= 0 && x < 160))
        assert.equal(inHalfOpen(fingerStart(id, j), id, other), j <= last);
    }
  });
});

describe('RecordStore', () => {
  it('expires records by TTL on the injected clock and sweeps them', () => {
    const c = clock();
    const s = new RecordStore({ clock: c });
    assert.ok(s.put(rec('bob', '10.0.0.1:5060', c.wallNow(), 1000)).ok);
    assert.equal(s.get('bob')?.value, '10.0.0.1:5060');
    c.advance(999);
    assert.ok(s.has('bob'));
    c.advance(1);
    assert.equal(s.get('bob'), undefined);
    assert.ok(s.put(rec('a', 'x', c.wallNow(), 10)).ok);
    assert.ok(s.put(rec('b', 'x', c.wallNow(), 10_000)).ok);
    c.advance(10);
    assert.equal(s.sweep(), 1);
    assert.equal(s.size, 1);
    assert.equal(s.put(rec('old', 'x', c.wallNow() - 5000, 100)).ok, false);
  });

  it('keeps the newer version and reports a stale one as not stored', () => {
    const c = clock();
    const s = new RecordStore({ clock: c });
    const now = c.wallNow();
    assert.deepEqual(s.put(rec('k', 'v2', now, 60_000, 2)).ok, true);
    const stale = s.put(rec('k', 'v1', now - 10, 60_000, 1));
    assert.ok(stale.ok && !stale.stored);
    assert.equal(s.get('k')?.value, 'v2');
    const newer = s.put(rec('k', 'v3', now + 1, 60_000, 3));
    assert.ok(newer.ok && newer.stored);
    assert.equal(s.get('k')?.value, 'v3');
  });

  it('runs validators per namespace', () => {
    const c = clock();
    const onlyDigits: RecordValidator = {
      validate: (r) => (typeof r.value === 'string' && /^\d+$/.test(r.value) ? null : 'digits only'),
      select: (a, b) => (a.created >= b.created ? a : b),
    };
    const s = new RecordStore({ clock: c }, { validators: { num: onlyDigits, name: firstWriterValidator() } });
    const now = c.wallNow();
    assert.equal(namespaceOf('/num/x'), 'num');
    assert.equal(namespaceOf('bob.3'), '');
    assert.ok(s.put(rec('/num/x', '123', now)).ok);
    const bad = s.put(rec('/num/y', 'abc', now));
    assert.ok(!bad.ok && bad.code === 'DHT_RECORD_INVALID');
    const unknown = s.put(rec('/zzz/y', '1', now));
    assert.ok(!unknown.ok && unknown.code === 'DHT_RECORD_INVALID');
    assert.ok(s.put(rec('/name/alice', 'key-A', now)).ok);
    const takeover = s.put(rec('/name/alice', 'key-B', now + 5));
    assert.ok(takeover.ok && !takeover.stored);
    assert.equal(s.get('/name/alice')?.value, 'key-A');
  });

  it('enforces per-record and per-node limits', () => {
    const c = clock();
    const s = new RecordStore({ clock: c }, { maxRecordBytes: 100, maxBytes: 200, maxRecords: 10 });
    const now = c.wallNow();
    const big = s.put(rec('big', 'x'.repeat(200), now));
    assert.ok(!big.ok && big.code === 'DHT_RECORD_TOO_LARGE');
    assert.ok(s.put(rec('a', 'x'.repeat(50), now)).ok);
    assert.ok(s.put(rec('b', 'x'.repeat(50), now)).ok);
    const full = s.put(rec('c', 'x'.repeat(50), now));
    assert.ok(!full.ok && full.code === 'DHT_STORE_FULL');
    const few = new RecordStore({ clock: c }, { maxRecords: 2 });
    few.put(rec('a', '1', now));
    few.put(rec('b', '1', now));
    const r3 = few.put(rec('c', '1', now));
    assert.ok(!r3.ok && r3.code === 'DHT_STORE_FULL');
    assert.equal(s.bytes, 2 * (1 + 50 + 32));
  });

  it('iterates by ring range for hand-off', () => {
    const c = clock();
    const s = new RecordStore({ clock: c });
    const keys = Array.from({ length: 200 }, (_, i) => `user${i}`);
    for (const k of keys) s.put(rec(k, 'v', c.wallNow()));
    const a = keyPosition('cut-a');
    const b = keyPosition('cut-b');
    const inside = s.range(a, b).map((r) => r.key);
    const outside = s.outside(a, b).map((r) => r.key);
    assert.equal(inside.length + outside.length, 200);
    for (const k of inside) assert.ok(inHalfOpen(keyPosition(k), a, b));
    for (const k of outside) assert.ok(!inHalfOpen(keyPosition(k), a, b));
  });

  it('parses only well-formed records from the network', () => {
    const refusal = (x: unknown): string => {
      const r = parseRecord(x);
      assert.equal(r.ok, false);
      return r.ok ? '' : r.error;
    };
    assert.match(refusal(null), /not an object/);
    assert.match(refusal({ key: '', value: 'x', created: 1, ttlMs: 1, seq: 0 }), /bad key/);
    assert.match(refusal({ key: 'k', value: 5, created: 1, ttlMs: 1, seq: 0 }), /bad value/);
    assert.match(refusal({ key: 'k', value: 'x', created: 1, ttlMs: -1, seq: 0 }), /bad ttlMs/);
    assert.match(refusal({ key: 'k', value: 'x', created: 1, ttlMs: 1, seq: 0, publisher: 'zz' }), /bad publisher/);
    assert.deepEqual(parseRecord({ key: 'k', value: 'x', created: 1, ttlMs: 1, seq: 0, extra: 1 }), {
      ok: true,
      value: { key: 'k', value: 'x', created: 1, ttlMs: 1, seq: 0 },
    });
  });
});
