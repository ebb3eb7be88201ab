import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../sip/e2e-helpers.ts';
import { registerAndCall, TestPhones, udpPeer as peer } from './phones.ts';
import { type AdapterProc, type BootstrapProc, startAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * Restarts of real processes: the bootstrap's registry (SQLite) and an
 * adapter's user keys (users/<name>.pem) survive; phones are the small
 * built-in user agent, so only the overlay runs out of process.
 */
describe('bootstrap and adapter restarted as processes', { timeout: 240_000 }, () => {
  let base = '';
  let bootListen = '';
  let bSip = '';
  let boot: BootstrapProc;
  let A: AdapterProc;
  let B: AdapterProc;
  const stops: Array<() => Promise<void>> = [];
  const phones = new TestPhones();

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-restart-'));
    bootListen = `127.0.0.1:${await freePort()}`;
    bSip = `127.0.0.1:${await freePort()}`;
    boot = await startBootstrapProc(join(base, 'boot'), bootListen);
    A = await startAdapterProc(boot.spec, join(base, 'A'));
    B = await startAdapterProc(boot.spec, join(base, 'B'), bSip);
    await registerAndCall(phones, 'alice', A.sip, 'bob', B.sip);
  });

  after(async () => {
    await phones.close();
    for (const s of stops.reverse()) await s().catch(() => {});
    for (const p of [A, B, boot]) await p?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('a bootstrap restarted mid-run keeps every registration', async () => {
    await boot.stop();
    boot = await startBootstrapProc(join(base, 'boot'), bootListen);
    // The registry survived: bob's name is still bound to his key, so a phone behind another adapter
    // (a fresh key) is refused with the reason.
    const E = await startAdapterProc(boot.spec, join(base, 'E'));
    stops.push(() => E.stop());
    const thief = await phones.add('bob', false);
    const r = await thief.register(peer(E.sip));
    assert.equal(r.status, 403);
    assert.match(r.reason, /already registered with another key/);
    // Calls still verify, and new users can register.
    const call = await phones.get('alice').invite(`sip:bob@${A.sip}`, peer(A.sip));
    assert.equal(call.redirectedTo, phones.get('bob').contactUri);
    const carol = await phones.add('carol');
    assert.equal((await carol.register(peer(A.sip))).status, 200);
  });

  it('an adapter restarted keeps its user key and can still call and be called', async () => {
    await B.stop();
    B = await startAdapterProc(boot.spec, join(base, 'B'), bSip);
    // Same key from users/bob.pem: the bootstrap accepts bob again (a new key would be refused as above).
    assert.equal((await phones.get('bob').register(peer(B.sip))).status, 200);
    // Alice's adapter trusted bob's key on first use; the key is unchanged, so the call verifies.
    const call = await phones.get('alice').invite(`sip:bob@${A.sip}`, peer(A.sip));
    assert.equal(call.redirectedTo, phones.get('bob').contactUri);
    const back = await phones.get('bob').invite(`sip:alice@${B.sip}`, peer(B.sip));
    assert.equal(back.redirectedTo, phones.get('alice').contactUri);
  });
});
