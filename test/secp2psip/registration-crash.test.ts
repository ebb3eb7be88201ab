/**
 * No half-written registration survives a crash (name-registry.ts): a
 * bootstrap on a shared PostgreSQL registry is crashed between the steps of a
 * registration (claimed with its records pending / records put into the
 * ring / marked published). After a restart the pending registration is
 * published and marked, and the user's phone registers again with the same
 * key (the adapter kept it). One bootstrap in the set, so that no other one
 * finishes the registration for it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { probeInvite } from '../../src/harness/call-probe.ts';
import { sipPeer } from '../../src/harness/local-overlay.ts';
import type { RegistrationStep } from '../../src/secp2psip/bootstrap-server.ts';
import {
  type RunningAdapter,
  type RunningBootstrap,
  startAdapterDaemon,
  startBootstrapDaemon,
} from '../../src/secp2psip/daemon.ts';
import type { BootstrapInfo } from '../../src/secp2psip/messages.ts';
import { pieceKey } from '../../src/secp2psip/ring-records.ts';
import { freePort } from '../sip/e2e-helpers.ts';
import { postgresMissing, TestPostgres } from '../support/postgres.ts';
import { TestPhones } from './phones.ts';
import { crashBootstrap } from './bootstrap-crash.ts';

const skip = postgresMissing();
const N = 3;

describe('a bootstrap crashed between the steps of a registration', { skip, timeout: 180_000 }, () => {
  let pg: TestPostgres;
  let url = '';
  let base = '';
  let port = 0;
  let boot: RunningBootstrap;
  let adapter: RunningAdapter;
  const phones = new TestPhones();
  /** The step and name at which the running bootstrap crashes. */
  let crashAt: { step: RegistrationStep; name: string } | undefined;

  const startBoot = () =>
    startBootstrapDaemon({
      host: '127.0.0.1',
      port,
      dataDir: join(base, 'boot'),
      k: 2,
      n: N,
      stabilizeMs: 500,
      registry: url,
      onStep: async (step, name) => {
        if (crashAt?.step !== step || crashAt.name !== name) return;
        crashAt = undefined;
        await crashBootstrap(boot);
        // Nothing after this point runs, as in a process that died here.
        await new Promise(() => {});
      },
    });
  const state = (name: string) => pg.psql('crash', `SELECT state FROM registry_users WHERE name = '${name}'`).trim();
  /** The ring keys of `name` (location and pieces) held by the live members. */
  function inRing(name: string): string[] {
    const rings = [adapter.node.ring, ...(boot.server.ring.stopped ? [] : [boot.server.ring])];
    const keys = [name, ...Array.from({ length: N }, (_, i) => pieceKey(name, i + 1))];
    return keys.filter((k) => rings.some((r) => r.store.has(k)));
  }
  async function until(what: string, ok: () => boolean, limitMs = 60_000): Promise<void> {
    const end = Date.now() + limitMs;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const register = (name: string) => phones.get(name).register(sipPeer(adapter));

  before(async () => {
    pg = await TestPostgres.start();
    url = pg.createDatabase('crash');
    base = mkdtempSync(join(tmpdir(), 'secp2psip-crash-'));
    port = await freePort();
    boot = await startBoot();
    const info: BootstrapInfo = boot.info;
    adapter = await startAdapterDaemon({
      openRegistration: true,
      sipHost: '127.0.0.1',
      sipPort: 0,
      bootstrap: info,
      dataDir: join(base, 'adapter'),
      stabilizeMs: 500,
    });
    await phones.add('alice');
    assert.equal((await register('alice')).status, 200);
  });

  after(async () => {
    await phones.close();
    await adapter?.close().catch(() => {});
    await boot?.close().catch(() => {});
    pg?.destroy();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  for (const step of ['claimed', 'published'] as const)
    it(`after '${step}': the restarted bootstrap publishes and marks it, and the same key registers again`, async () => {
      const name = `crash-${step}`;
      await phones.add(name);
      crashAt = { step, name };
      const failed = await register(name);
      assert.notEqual(failed.status, 200, 'the phone was not told it registered');
      assert.equal(crashAt, undefined, 'the bootstrap crashed at the step');
      // What the crash left: the name bound with its records pending; in the ring only if they were put.
      assert.equal(state(name), 'pending');
      assert.deepEqual(inRing(name).length, step === 'claimed' ? 0 : N + 1, inRing(name).join(','));
      boot = await startBoot();
      await until(`${name} published`, () => state(name) === 'published');
      await until(`${name} in the ring`, () => inRing(name).length === N + 1);
      // The adapter kept the user's key: the phone's next REGISTER is the same key, accepted.
      let r = await register(name);
      for (let i = 0; r.status !== 200 && i < 20; i++) {
        await new Promise((res) => setTimeout(res, 500));
        r = await register(name);
      }
      assert.equal(r.status, 200, `${r.status} ${r.reason}`);
      const call = await probeInvite(phones.get('alice').element, {
        caller: 'alice',
        callee: name,
        adapter: sipPeer(adapter),
        domain: '127.0.0.1',
      });
      assert.equal(call.status, 302, call.reason);
      // The registration just answered is marked published right after its answer.
      const pending = () => Number(pg.psql('crash', `SELECT count(*) FROM registry_users WHERE state = 'pending'`));
      await until('no registration pending', () => pending() === 0, 5000);
    });
});
