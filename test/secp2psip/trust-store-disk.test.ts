/**
 * The trust store on a disk that refuses writes (issue: disk faults degrade,
 * not break). A call must not fail because trust bookkeeping could not be
 * written: the keys in memory stay authoritative (a changed key is still
 * refused), the fault is logged with the file and errno, and the rows reach
 * the file once the disk works again, without a restart.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { TrustStore } from '../../src/secp2psip/trust-store.ts';
import { SimClock } from '../../src/util/clock.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { fillDisk, freeDisk, isRoot, mountTinyTmpfs, unmount } from '../support/disk.ts';

const rnd = new SeededRandom(7);
const bundle = (name: string, registeredAt = 100) => ({
  name,
  signKey: rnd.bytes(32),
  sealKey: rnd.bytes(32),
  registeredAt,
});

/** A logger whose lines are kept (parsed) for the assertions. */
function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { logger, lines };
}

function rowsIn(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT name FROM trusted ORDER BY name').all() as Array<{ name: string }>).map((r) => r.name);
  } finally {
    db.close();
  }
}

describe('TrustStore on a full disk', { skip: isRoot ? false : 'needs root to mount a tiny tmpfs' }, () => {
  const base = mkdtempSync(join(tmpdir(), 'trust-disk-'));
  const dir = join(base, 'data');
  let mounted = false;
  before(() => {
    mkdirSync(dir);
    mounted = mountTinyTmpfs(dir);
  });
  after(() => {
    if (mounted) unmount(dir);
    rmSync(base, { recursive: true, force: true });
  });

  it('keeps calls working and keys refused, logs file and errno, and writes once space is back', (t) => {
    if (!mounted) return t.skip('tmpfs could not be mounted');
    const file = join(dir, 'trust.sqlite');
    const clock = new SimClock();
    const { logger, lines } = capture();
    const store = new TrustStore(file, { logger, clock });
    const alice = bundle('alice');
    store.accept(alice, 1);
    const filler = fillDisk(dir);
    // The disk is full: new keys are trusted in memory, the call path sees no exception.
    const many = Array.from({ length: 200 }, (_, i) => bundle(`user${i}`));
    for (const b of many) assert.doesNotThrow(() => store.accept(b, 2));
    assert.ok(store.stats.faulty, 'the write was refused');
    assert.ok(store.stats.failedWrites >= 1);
    for (const b of many) assert.equal(store.check(b), 'match');
    assert.equal(store.check({ ...many[150], signKey: rnd.bytes(32) }), 'mismatch', 'a changed key is still refused');
    const err = lines.find((l) => l.level === 50);
    assert.ok(err, 'the fault is logged as an error');
    assert.equal(err.file, file);
    assert.equal(err.errno, 'ENOSPC');
    assert.equal(lines.filter((l) => l.level === 50).length, 1, 'logged once per fault, not per call');
    // Still full at the first retry; space comes back; a later retry writes every key.
    clock.advance(1000);
    assert.ok(store.stats.faulty);
    freeDisk(filler);
    clock.advance(60_000);
    assert.equal(store.stats.faulty, false);
    assert.equal(store.stats.recoveries, 1);
    assert.ok(lines.some((l) => l.level === 30 && /writable again/.test(String(l.msg))));
    assert.deepEqual(rowsIn(file), ['alice', ...many.map((b) => b.name)].sort());
    store.close();
  });
});
