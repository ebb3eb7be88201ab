import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Registrar } from '../../src/sip/registrar.ts';
import { SqliteBindingStore } from '../../src/sip/registrar-sqlite.ts';
import { SimClock } from '../../src/util/clock.ts';
import { fillDisk, freeDisk, isRoot, mountTinyTmpfs, unmount } from '../support/disk.ts';
import { open, reg, uri } from './registrar-store-support.ts';

const dir = mkdtempSync(join(tmpdir(), 'registrar-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const contactsOf = (r: Registrar, aor: string) => r.lookup(uri(aor)).map((b) => `${b.contact.uri.host}:${b.expiresIn}`);

describe('registrar bindings kept in SQLite', () => {
  it('come back after a restart with the lifetime they had left; lapsed ones are dropped from the file', () => {
    const file = join(dir, 'restart.sqlite');
    const a = open(file, 0);
    assert.equal(a.r.register(reg('sip:alice@example.com', '<sip:alice@192.0.2.1:5060>', 600, 1)).status, 200);
    assert.equal(a.r.register(reg('sip:bob@example.com', '<sip:bob@192.0.2.2:5060>', 60, 1)).status, 200);
    assert.equal(a.r.register(reg('sip:bob@example.com', '<sip:bob@192.0.2.3:5060>;q=0.5', 300, 2)).status, 200);
    a.store.close();

    // 100 s later (wall clock): alice has 500 s left, bob's first contact lapsed, his second has 200 s.
    const b = open(file, 100_000);
    assert.deepEqual(b.report, { restored: 2, expired: 1, skipped: [] });
    assert.deepEqual(contactsOf(b.r, 'sip:alice@example.com'), ['192.0.2.1:500']);
    assert.deepEqual(contactsOf(b.r, 'sip:bob@example.com'), ['192.0.2.3:200']);
    assert.equal(b.r.lookup(uri('sip:bob@example.com'))[0].contact.params[0][0], 'q', 'parameters kept');
    assert.equal(b.store.load().rows.length, 2, 'the lapsed row left the file');
    // The restored binding keeps its Call-ID and CSeq: a stale refresh is still refused (10.3 step 7).
    assert.equal(b.r.register(reg('sip:bob@example.com', '<sip:bob@192.0.2.3:5060>', 300, 2)).status, 400);
    assert.equal(b.r.register(reg('sip:bob@example.com', '<sip:bob@192.0.2.3:5060>', 300, 3)).status, 200);
    b.store.close();
  });

  it('follow un-REGISTER (Expires: 0 and Contact: *) and expiry', () => {
    const file = join(dir, 'changes.sqlite');
    const a = open(file, 0);
    a.r.register(reg('sip:carol@example.com', '<sip:carol@192.0.2.4:5060>', 600, 1));
    a.r.register(reg('sip:carol@example.com', '<sip:carol@192.0.2.5:5060>', 600, 2));
    a.r.register(reg('sip:dave@example.com', '<sip:dave@192.0.2.6:5060>', 600, 1));
    a.r.register(reg('sip:erin@example.com', '<sip:erin@192.0.2.7:5060>', 30, 1));
    assert.equal(a.store.load().rows.length, 4);
    assert.equal(a.r.register(reg('sip:carol@example.com', '<sip:carol@192.0.2.4:5060>', 0, 3)).status, 200);
    const star = reg('sip:dave@example.com', '*', 0, 2);
    assert.equal(a.r.register(star).status, 200);
    a.clock.advance(31_000);
    assert.equal(a.r.sweep(), 1);
    assert.deepEqual(
      a.store.load().rows.map((b) => b.contact),
      ['<sip:carol@192.0.2.5:5060>'],
    );
    a.store.close();
    const b = open(file, 31_000);
    assert.deepEqual(b.r.addressesOfRecord(), ['sip:carol@example.com']);
    b.r.removeAor('sip:carol@example.com');
    assert.equal(b.store.load().rows.length, 0);
    b.store.close();
  });

  it('skip damaged rows with the reason and remove them; never throw', () => {
    const file = join(dir, 'damaged.sqlite');
    const a = open(file, 0);
    a.r.register(reg('sip:alice@example.com', '<sip:alice@192.0.2.1:5060>', 600, 1));
    a.store.close();
    const db = new Database(file);
    const ins = db.prepare(
      'INSERT INTO bindings (aor, contact_key, contact, call_id, cseq, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const later = Date.UTC(2026, 0, 2);
    ins.run('sip:bob@example.com', 'k', '<sip:bob@192.0.2.2', 'c', 1, later); // unterminated contact
    ins.run('not a uri', 'k', '<sip:x@192.0.2.2>', 'c', 1, later);
    ins.run('sip:Carol@Example.COM', 'k2', '<sip:c@192.0.2.2>', 'c', 1, later); // not canonical
    ins.run('sip:dave@example.com', 'sip:dave@192.0.2.9:', '<sip:dave@192.0.2.2>', 'c', 1, later); // wrong key
    ins.run('sip:erin@example.com', 'sip:erin@192.0.2.2:', '<sip:erin@192.0.2.2>', 'c', 'many', later); // wrong type
    ins.run('sip:fred@example.com', 'sip:fred@192.0.2.2:', '<sip:fred@192.0.2.2>', '', 1, later); // no Call-ID
    db.close();
    const b = open(file, 1000);
    assert.equal(b.loaded.bad.length, 1);
    assert.equal(b.report.restored, 1);
    assert.deepEqual(
      b.report.skipped.map((s) => s.reason),
      [
        'malformed contact',
        'not a canonical address-of-record',
        'not a canonical address-of-record',
        'contact does not match its key',
        'malformed Call-ID or CSeq',
      ],
    );
    assert.deepEqual(b.r.addressesOfRecord(), ['sip:alice@example.com']);
    assert.equal(b.store.load().rows.length, 1, 'only the good row is left');
    b.store.close();
  });

  it('a file that is not a database is moved aside and replaced by an empty one', () => {
    const file = join(dir, 'garbage.sqlite');
    writeFileSync(file, 'this is not a database, just some bytes that happen to be here '.repeat(20));
    const a = open(file, 0);
    assert.ok(a.loaded.movedAside && existsSync(a.loaded.movedAside));
    assert.equal(a.report.restored, 0);
    assert.equal(a.r.register(reg('sip:alice@example.com', '<sip:alice@192.0.2.1:5060>', 600, 1)).status, 200);
    a.store.close();
    assert.equal(open(file, 0).report.restored, 1);
    assert.ok(readdirSync(dir).some((f) => f.startsWith('garbage.sqlite.corrupt-')));
  });

  it('a write that fails is counted and the REGISTER still answered', () => {
    const { r, store } = open(':memory:', 0);
    store.close();
    assert.equal(r.register(reg('sip:alice@example.com', '<sip:alice@192.0.2.1:5060>', 600, 1)).status, 200);
    assert.equal(store.failedWrites, 1);
  });

  it('a table of another shape under the name is moved aside like a file that is not a database', () => {
    const file = join(dir, 'shape.sqlite');
    const db = new Database(file);
    db.exec('CREATE TABLE bindings (aor TEXT, other INTEGER)');
    db.close();
    const a = open(file, 0);
    assert.ok(a.loaded.movedAside && existsSync(a.loaded.movedAside));
    assert.equal(a.r.register(reg('sip:alice@example.com', '<sip:alice@192.0.2.1:5060>', 600, 1)).status, 200);
    assert.equal(a.store.failedWrites, 0);
    a.store.close();
    assert.equal(open(file, 0).report.restored, 1);
  });

  it('a disk that fills up: bindings carry on in memory and reach the file once it takes writes', (t) => {
    const disk = join(dir, 'tiny');
    mkdirSync(disk);
    if (!isRoot || !mountTinyTmpfs(disk, '512k')) return t.skip('needs root to mount a tiny tmpfs');
    try {
      const file = join(disk, 'bindings.sqlite');
      let now = 0;
      const clock = new SimClock(0);
      const store = new SqliteBindingStore(file, { now: () => now });
      const r = new Registrar({ clock, store }, { minExpires: 10, maxExpires: 3600 });
      const register = (user: string, n: number) =>
        r.register(reg(`sip:${user}@example.com`, `<sip:${user}@192.0.2.${n}:5060>`, 600, 1, `reg-${user}`)).status;
      assert.equal(register('alice', 1), 200);
      const filler = fillDisk(disk);
      for (let i = 0; i < 40 && !store.inMemory; i++) assert.equal(register(`u${i}`, 10), 200);
      assert.ok(store.inMemory, 'the full disk refused a write');
      assert.equal(register('bob', 2), 200);
      freeDisk(filler);
      now += 5000;
      assert.equal(register('carol', 3), 200);
      assert.equal(store.inMemory, false, 'the file is used again');
      store.close();
      const again = open(file, 0);
      for (const u of ['alice', 'bob', 'carol']) assert.equal(contactsOf(again.r, `sip:${u}@example.com`).length, 1, u);
      again.store.close();
    } finally {
      unmount(disk);
    }
  });
});
