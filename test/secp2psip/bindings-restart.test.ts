import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { probeInvite } from '../../src/harness/call-probe.ts';
import { freePort } from '../sip/e2e-helpers.ts';
import { TestPhones, udpPeer } from './phones.ts';
import { type AdapterProc, type BootstrapProc, startAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * Phone bindings survive an adapter restart: `secp2psip adapter` processes,
 * phones are the small built-in user agent. After the restart nobody
 * registers again, yet a call to the phone's user is redirected to it.
 */
describe('phone bindings across an adapter restart', { timeout: 120_000 }, () => {
  let base = '';
  let bSip = '';
  let boot: BootstrapProc;
  let A: AdapterProc;
  let B: AdapterProc;
  const phones = new TestPhones();

  /** alice (at A) calls `callee` at B's user; the phone sees the final answer, the redirect is not followed. */
  const call = (callee: string) =>
    probeInvite(phones.get('alice').element, { caller: 'alice', callee, adapter: udpPeer(A.sip), domain: '127.0.0.1' });

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-bindings-'));
    bSip = `127.0.0.1:${await freePort()}`;
    boot = await startBootstrapProc(join(base, 'boot'), '127.0.0.1:0', ['--k', '2', '--n', '3']);
    A = await startAdapterProc(boot.spec, join(base, 'A'));
    B = await startAdapterProc(boot.spec, join(base, 'B'), bSip);
    assert.equal((await (await phones.add('alice')).register(udpPeer(A.sip))).status, 200);
    for (const u of ['bob', 'carol', 'dave'])
      assert.equal((await (await phones.add(u)).register(udpPeer(B.sip))).status, 200);
    // dave's phone signs off (RFC 3261 10.2.2); the others stay registered.
    assert.equal((await phones.get('dave').register(udpPeer(B.sip), 0)).status, 200);
    for (const u of ['bob', 'carol']) assert.equal((await call(u)).contact, `<${phones.get(u).contactUri}>`);
    assert.equal((await call('dave')).status, 480);
  });

  after(async () => {
    await phones.close();
    for (const p of [A, B, boot]) await p?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('a restarted adapter redirects calls to its phones without a new REGISTER; lapsed and removed ones are gone', async () => {
    await B.stop();
    // While B is down, carol's registration runs out (written here rather than waited for) and a row is damaged.
    const db = new Database(join(base, 'B', 'bindings.sqlite'));
    const rows = db.prepare('SELECT aor FROM bindings ORDER BY aor').all() as Array<{ aor: string }>;
    assert.deepEqual(
      rows.map((r) => r.aor),
      ['sip:bob@127.0.0.1', 'sip:carol@127.0.0.1'],
      'what B kept: dave signed off',
    );
    db.prepare('UPDATE bindings SET expires_at = ? WHERE aor = ?').run(Date.now() - 1000, 'sip:carol@127.0.0.1');
    const insert = db.prepare(
      'INSERT INTO bindings (aor, contact_key, contact, call_id, cseq, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const later = Date.now() + 60_000;
    insert.run('sip:mallory@127.0.0.1', 'x', '<sip:mallory@192.0.2.66', 'c', 1, later);
    // A binding for a name bound to another adapter's key: B would need a new key for it, which the
    // bootstrap refuses, so the binding goes.
    insert.run('sip:alice@127.0.0.1', 'sip:alice@192.0.2.7:5060', '<sip:alice@192.0.2.7:5060>', 'c', 1, later);
    db.close();

    B = await startAdapterProc(boot.spec, join(base, 'B'), bSip);
    assert.match(B.stderr(), /stored phone binding skipped/);
    assert.match(B.stderr(), /"user":"alice".*restored user not registered with the bootstrap/);
    const toBob = await call('bob');
    assert.equal(toBob.status, 302, toBob.reason);
    assert.equal(toBob.contact, `<${phones.get('bob').contactUri}>`);
    // The whole call: the 302 is followed and bob's phone answers.
    const full = await phones.get('alice').invite(`sip:bob@${A.sip}`, udpPeer(A.sip));
    assert.equal(full.redirectedTo, phones.get('bob').contactUri);
    await phones.get('alice').bye(full);
    for (const u of ['carol', 'dave', 'mallory']) {
      const r = await call(u);
      assert.notEqual(r.status, 302, `${u}: ${r.status} ${r.reason}`);
    }
    const left = new Database(join(base, 'B', 'bindings.sqlite'), { readonly: true });
    assert.deepEqual(
      (left.prepare('SELECT aor FROM bindings').all() as Array<{ aor: string }>).map((r) => r.aor),
      ['sip:bob@127.0.0.1'],
    );
    left.close();
    // carol's phone registers again and is reachable as before.
    assert.equal((await phones.get('carol').register(udpPeer(B.sip))).status, 200);
    assert.equal((await call('carol')).contact, `<${phones.get('carol').contactUri}>`);
  });
});
