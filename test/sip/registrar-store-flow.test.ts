import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { FlowKeepAlive } from '../../src/sip/flow-keepalive.ts';
import { liveBindings, phoneDestination } from '../../src/sip/flow.ts';
import { Registrar } from '../../src/sip/registrar.ts';
import { SqliteBindingStore } from '../../src/sip/registrar-sqlite.ts';
import { parseStoredFlow, storedFlow } from '../../src/sip/stored-flow.ts';
import type { Peer } from '../../src/sip/transport.ts';
import { SimClock } from '../../src/util/clock.ts';
import { isRoot, unmount } from '../support/disk.ts';
import { open, reg as register, uri } from './registrar-store-support.ts';

/** A REGISTER of `contact` for `to`, for ten minutes. */
const reg = (to: string, contact: string, cseq: number) => register(to, contact, 600, cseq, `reg-${to}`);

const dir = mkdtempSync(join(tmpdir(), 'registrar-flow-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** `dir` made read-only for root too (a read-only bind mount on itself); false when it cannot be. */
function readOnlyBind(d: string): boolean {
  if (!isRoot) return false;
  try {
    execFileSync('mount', ['--bind', d, d], { stdio: 'ignore' });
  } catch {
    return false;
  }
  try {
    execFileSync('mount', ['-o', 'remount,ro,bind', d], { stdio: 'ignore' });
    return true;
  } catch {
    unmount(d);
    return false;
  }
}

const flowOfAor = (r: Registrar, aor: string) => r.lookup(uri(aor)).map((b) => b.flow);

// The bindings table as it was before flows were kept.
const OLD_SCHEMA = `CREATE TABLE bindings (aor TEXT NOT NULL, contact_key TEXT NOT NULL, contact TEXT NOT NULL,
  call_id TEXT NOT NULL, cseq INTEGER NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (aor, contact_key))`;

const NAT_FLOW: Peer = { transport: 'UDP', address: '203.0.113.7', port: 40123 };
const TCP_FLOW: Peer = { transport: 'TCP', address: '203.0.113.8', port: 51000, connId: 4, connectionOnly: true };

describe('stored flows', () => {
  it('text form: only a UDP flow is kept; what comes back from disk is checked', () => {
    assert.equal(storedFlow(NAT_FLOW), 'UDP|203.0.113.7|40123');
    assert.equal(storedFlow({ transport: 'UDP', address: '2001:db8::5', port: 5060 }), 'UDP|2001:db8::5|5060');
    assert.equal(storedFlow(TCP_FLOW), undefined, 'a connection does not survive a restart');
    assert.equal(storedFlow({ transport: 'TLS', address: '203.0.113.8', port: 5061, connId: 2 }), undefined);
    assert.equal(storedFlow({ transport: 'WS', address: '203.0.113.8', port: 80, connId: 3 }), undefined);
    assert.equal(storedFlow(undefined), undefined);
    assert.deepEqual(parseStoredFlow('UDP|203.0.113.7|40123'), { ok: true, value: NAT_FLOW });
    assert.deepEqual(parseStoredFlow('UDP|2001:db8::5|5060'), {
      ok: true,
      value: { transport: 'UDP', address: '2001:db8::5', port: 5060 },
    });
    for (const bad of ['', 'TCP|203.0.113.7|5060', 'UDP|example.com|5060', 'UDP|999.1.1.1|5060', 'UDP|1.2.3.4|0'])
      assert.equal(parseStoredFlow(bad).ok, false, bad);
    assert.equal(parseStoredFlow('UDP|1.2.3.4|70000').ok, false);
    assert.equal(parseStoredFlow(5060).ok, false);
    assert.equal(parseStoredFlow(`UDP|${'1'.repeat(100)}|5060`).ok, false);
  });

  it('a UDP flow comes back with its binding; calls and keep-alives go over it; a TCP flow does not', () => {
    const file = join(dir, 'round-trip.sqlite');
    const a = open(file, 0);
    // A phone behind a NAT: private Contact, public flow. A TCP phone: Contact on its ephemeral port.
    assert.equal(a.r.register(reg('sip:alice@example.com', '<sip:alice@10.0.0.5:5060>', 1), NAT_FLOW).status, 200);
    assert.equal(
      a.r.register(reg('sip:bob@example.com', '<sip:bob@203.0.113.8:51000;transport=tcp>', 1), TCP_FLOW).status,
      200,
    );
    assert.equal(a.r.register(reg('sip:carol@example.com', '<sip:carol@192.0.2.9:5060>', 1)).status, 200);
    a.store.close();

    const b = open(file, 60_000);
    assert.deepEqual(b.report, { restored: 3, expired: 0, skipped: [] });
    assert.deepEqual(flowOfAor(b.r, 'sip:alice@example.com'), [NAT_FLOW]);
    assert.deepEqual(flowOfAor(b.r, 'sip:bob@example.com'), [undefined], 'the TCP connection is not restored');
    // Bob's binding is then like any binding without a flow: a request goes to his Contact (a new connection to
    // it), not 430 Flow Failed, whatever the transport says of the old connection.
    const bobs = b.r.lookup(uri('sip:bob@example.com'));
    assert.deepEqual(liveBindings({ isOpen: () => false }, bobs), { live: bobs, failed: false });
    assert.deepEqual(phoneDestination(bobs[0].contact.uri, bobs[0].flow), {
      transport: 'TCP',
      address: '203.0.113.8',
      port: 51000,
    });
    assert.deepEqual(flowOfAor(b.r, 'sip:carol@example.com'), [undefined]);
    const alice = b.r.lookup(uri('sip:alice@example.com'))[0];
    assert.deepEqual(phoneDestination(alice.contact.uri, alice.flow), NAT_FLOW, 'a call goes over the flow');
    const sent: Peer[] = [];
    const k = new FlowKeepAlive({ registrar: b.r, send: (to) => sent.push(to), clock: b.clock });
    assert.equal(k.tick(), 1);
    assert.deepEqual(sent, [NAT_FLOW], 'keep-alives to the restored flow only');

    // The phone registers again from another NAT port: the new flow replaces the stored one.
    const moved: Peer = { transport: 'UDP', address: '203.0.113.7', port: 40999 };
    assert.equal(b.r.register(reg('sip:alice@example.com', '<sip:alice@10.0.0.5:5060>', 2), moved).status, 200);
    // Bob's phone comes back over a new connection: that flow is not written either.
    assert.equal(
      b.r.register(reg('sip:bob@example.com', '<sip:bob@203.0.113.8:51000;transport=tcp>', 2), TCP_FLOW).status,
      200,
    );
    b.store.close();
    const c = open(file, 120_000);
    assert.deepEqual(flowOfAor(c.r, 'sip:alice@example.com'), [moved]);
    assert.deepEqual(flowOfAor(c.r, 'sip:bob@example.com'), [undefined]);
    c.store.close();
  });

  it('a file written before flows were kept opens, restores, and keeps flows from then on', () => {
    const file = join(dir, 'old-schema.sqlite');
    const old = new Database(file);
    old.exec(OLD_SCHEMA);
    old
      .prepare('INSERT INTO bindings VALUES (?, ?, ?, ?, ?, ?)')
      .run(
        'sip:dave@example.com',
        'sip:dave@10.0.0.6:5060',
        '<sip:dave@10.0.0.6:5060>',
        'old-1',
        7,
        Date.UTC(2026, 0, 1, 0, 10),
      );
    old.close();

    const a = open(file, 0);
    assert.deepEqual(a.report, { restored: 1, expired: 0, skipped: [] });
    assert.deepEqual(flowOfAor(a.r, 'sip:dave@example.com'), [undefined], 'an old row has no flow');
    const cols = (new Database(file, { readonly: true }).pragma('table_info(bindings)') as Array<{ name: string }>).map(
      (c) => c.name,
    );
    assert.ok(cols.includes('flow'), 'the column was added');
    // The CSeq it had still orders refreshes; a refresh now records the flow.
    const daveReg = (cseq: number) => {
      const r = reg('sip:dave@example.com', '<sip:dave@10.0.0.6:5060>', cseq);
      for (const h of r.headers) if (h.name === 'Call-ID') h.value = 'old-1';
      return r;
    };
    assert.equal(a.r.register(daveReg(7), NAT_FLOW).status, 400);
    assert.equal(a.r.register(daveReg(8), NAT_FLOW).status, 200);
    a.store.close();
    const b = open(file, 1000);
    assert.deepEqual(flowOfAor(b.r, 'sip:dave@example.com'), [NAT_FLOW]);
    b.store.close();
  });

  it('an old file on a read-only disk is read into memory, then migrated with the flows once writable', (t) => {
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    const file = join(ro, 'bindings.sqlite');
    const old = new Database(file);
    old.exec(OLD_SCHEMA);
    old
      .prepare('INSERT INTO bindings VALUES (?, ?, ?, ?, ?, ?)')
      .run('sip:erin@example.com', 'sip:erin@10.0.0.7:5060', '<sip:erin@10.0.0.7:5060>', 'e', 1, Date.UTC(2026, 0, 2));
    old.close();
    if (!readOnlyBind(ro)) return t.skip('needs root for a read-only bind mount');
    let nowMs = 0;
    let store: SqliteBindingStore;
    try {
      store = new SqliteBindingStore(file, { now: () => nowMs });
      assert.ok(store.inMemory, 'the file could not be opened for writing');
      const clock = new SimClock(0);
      const r = new Registrar({ clock, store }, { minExpires: 10, maxExpires: 3600 });
      assert.deepEqual(r.restore(store.load().rows), { restored: 1, expired: 0, skipped: [] });
      assert.equal(r.register(reg('sip:frank@example.com', '<sip:frank@10.0.0.8:5060>', 1), NAT_FLOW).status, 200);
    } finally {
      unmount(ro);
    }
    // Writable again: the next write, a few seconds on, puts the memory copy (flows included) into the migrated file.
    nowMs = 10_000;
    store.put({ ...store.load().rows.find((b) => b.aor === 'sip:frank@example.com')!, cseq: 2 });
    assert.equal(store.inMemory, false);
    store.close();
    const b = open(file, 0);
    assert.deepEqual(b.report, { restored: 2, expired: 0, skipped: [] });
    assert.deepEqual(flowOfAor(b.r, 'sip:frank@example.com'), [NAT_FLOW]);
    assert.deepEqual(flowOfAor(b.r, 'sip:erin@example.com'), [undefined]);
    b.store.close();
  });

  it('a row whose stored flow is malformed is skipped with the reason and removed; the others restore', () => {
    const file = join(dir, 'bad-flows.sqlite');
    const a = open(file, 0);
    a.store.close();
    const db = new Database(file);
    const put = db.prepare('INSERT INTO bindings VALUES (?, ?, ?, ?, ?, ?, ?)');
    const row = (user: string, flow: unknown) =>
      put.run(
        `sip:${user}@example.com`,
        `sip:${user}@10.0.0.9:5060`,
        `<sip:${user}@10.0.0.9:5060>`,
        'c',
        1,
        Date.UTC(2026, 0, 1, 0, 10),
        flow,
      );
    row('good', 'UDP|198.51.100.4|31000');
    row('none', null);
    row('tcp', 'TCP|198.51.100.4|31000');
    row('host', 'UDP|phone.example.com|5060');
    row('port', 'UDP|198.51.100.4|99999');
    row('junk', 'not a flow at all');
    row('blob', Buffer.from([1, 2, 3]));
    row('number', 12345);
    db.close();

    const b = open(file, 0);
    assert.equal(b.report.restored, 2);
    assert.deepEqual(
      b.report.skipped.map((s) => s.aor).sort(),
      ['blob', 'host', 'junk', 'number', 'port', 'tcp'].map((u) => `sip:${u}@example.com`),
    );
    for (const s of b.report.skipped) assert.match(s.reason, /^malformed flow: /);
    assert.deepEqual(flowOfAor(b.r, 'sip:good@example.com'), [
      { transport: 'UDP', address: '198.51.100.4', port: 31000 },
    ]);
    assert.deepEqual(flowOfAor(b.r, 'sip:none@example.com'), [undefined]);
    assert.equal(b.store.load().rows.length, 2, 'the skipped rows left the file');
    b.store.close();
  });
});
