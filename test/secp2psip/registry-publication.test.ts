/**
 * The publication state of a bootstrap's own SQLite registry (name-registry.ts): a claim with records
 * leaves them pending until marked published with the same location; older files gain the column on open,
 * their rows counting as published.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Registry } from '../../src/secp2psip/registry.ts';
import { SeededRandom } from '../../src/util/random.ts';

const dir = mkdtempSync(join(tmpdir(), 'secp2psip-publication-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const rnd = new SeededRandom(5);
const keys = () => ({ signKey: rnd.bytes(32), sealKey: rnd.bytes(32) });
const rec = (t: number) => ({
  location: new Uint8Array([t]),
  pieces: [new Uint8Array([t, 1]), new Uint8Array([t, 2])],
});

describe('registry publication state (SQLite)', () => {
  it('a claim with records is pending until its location is marked published', () => {
    const r = new Registry(':memory:');
    const k = keys();
    const c = r.claim('ann', k, 100, undefined, undefined, rec(1));
    assert.equal(c.outcome, 'created');
    assert.equal(c.entry.state, 'pending');
    assert.deepEqual(c.entry.pieces, rec(1).pieces);
    assert.deepEqual(r.pending(100, 100, 10), [], 'not older than the bound');
    assert.deepEqual(
      r.pending(101, 101, 10).map((e) => e.name),
      ['ann'],
    );
    assert.deepEqual(r.pending(101, 102, 10), [], 'taken: a sweep does not get it twice');
    r.markPublished('ann', rec(1).location, 102);
    assert.equal(r.get('ann')?.state, undefined);
    // A re-registration from elsewhere: pending again with the new location, pieces kept.
    const again = r.claim('ann', k, 200, undefined, undefined, rec(2));
    assert.equal(again.outcome, 'same');
    assert.equal(again.entry.state, 'pending');
    assert.deepEqual(again.entry.location, rec(2).location);
    assert.deepEqual(again.entry.pieces, rec(1).pieces);
    r.markPublished('ann', rec(1).location, 201);
    assert.equal(r.get('ann')?.state, 'pending', 'marking an older location changes nothing');
    r.markPublished('ann', rec(2).location, 202);
    assert.equal(r.get('ann')?.state, undefined);
    r.close();
  });

  it('a file from before publication states gains them, its rows published', () => {
    const file = join(dir, 'old.sqlite');
    const db = new Database(file);
    db.exec(`CREATE TABLE users (name TEXT PRIMARY KEY, sign_key BLOB NOT NULL, seal_key BLOB NOT NULL,
      registered_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, cert_fpr TEXT, location BLOB, pieces BLOB)`);
    db.prepare('INSERT INTO users VALUES (?, ?, ?, 1, 1, NULL, ?, NULL)').run(
      'old',
      Buffer.alloc(32),
      Buffer.alloc(32),
      Buffer.from([9]),
    );
    db.close();
    const r = new Registry(file);
    assert.equal(r.get('old')?.state, undefined);
    assert.deepEqual(r.pending(Number.MAX_SAFE_INTEGER, 0, 10), []);
    r.close();
  });
});
