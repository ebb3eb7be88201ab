/**
 * Three bootstraps over loopback TLS sharing one registry on a real
 * PostgreSQL (a private cluster for this file), adapters admitted by each,
 * real SIP REGISTERs and INVITEs from the built-in phones:
 *
 * - any bootstrap binds any name and none forwards; of phones claiming one
 *   name at once through different bootstraps exactly one wins;
 * - with a bootstrap crashed, every registration succeeds through the others
 *   (adapters send REGISTER to another bootstrap of the set);
 * - with the database stopped mid-load, phones (baresip among them) get 503
 *   with Retry-After, calls keep working from the ring, and registrations
 *   succeed again once it is back, with nothing lost.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { probeInvite } from '../../src/harness/call-probe.ts';
import { sipPeer } from '../../src/harness/local-overlay.ts';
import { Identity } from '../../src/identity/identity.ts';
import {
  type RunningAdapter,
  type RunningBootstrap,
  startAdapterDaemon,
  startBootstrapDaemon,
} from '../../src/secp2psip/daemon.ts';
import type { BootstrapInfo } from '../../src/secp2psip/messages.ts';
import { authorityFor } from '../../src/secp2psip/name-authority.ts';
import { getHeader } from '../../src/sip/message.ts';
import { freePort, haveBinary } from '../sip/e2e-helpers.ts';
import { type Phone, startPhone, waitForPhone } from '../support/baresip.ts';
import { postgresMissing, TestPostgres } from '../support/postgres.ts';
import { crashBootstrap } from './bootstrap-crash.ts';
import { TestPhones } from './phones.ts';

const skip = postgresMissing();

describe('three bootstraps sharing one registry on PostgreSQL', { skip, timeout: 240_000 }, () => {
  let pg: TestPostgres;
  let url = '';
  let base = '';
  const infos: BootstrapInfo[] = [];
  const boots: RunningBootstrap[] = [];
  const adapters: RunningAdapter[] = [];
  const phones = new TestPhones();

  const startBoot = (i: number) =>
    startBootstrapDaemon({
      host: '127.0.0.1',
      port: Number(infos[i].addr.split(':')[1]),
      dataDir: join(base, `boot-${i}`),
      k: 2,
      n: 3,
      peers: infos,
      stabilizeMs: 500,
      registry: url,
    });
  const startAdapter = (i: number, via: number) =>
    startAdapterDaemon({
      openRegistration: true,
      sipHost: '127.0.0.1',
      sipPort: 0,
      bootstrap: infos[via],
      dataDir: join(base, `adapter-${i}`),
      stabilizeMs: 500,
    });
  const owner = (name: string) => infos.findIndex((b) => b.key === authorityFor(name, infos).key);
  /** A fresh name whose rendezvous authority is bootstrap `b` (what a set of own registries would forward to). */
  let seq = 0;
  function ownedBy(b: number, prefix: string): string {
    for (;;) {
      const n = `${prefix}${seq++}`;
      if (owner(n) === b) return n;
    }
  }
  async function register(user: string, at: RunningAdapter, keep = true) {
    const p = phones.has(user) && keep ? phones.get(user) : await phones.add(user, false);
    const r = await p.register(sipPeer(at));
    if (r.status === 200 && keep) {
      phones.keep(p);
      where.set(user, at);
    }
    return r;
  }
  async function registerOk(user: string, at: RunningAdapter) {
    const r = await register(user, at);
    assert.equal(r.status, 200, `${user} at ${at.sipAddr}: ${r.status} ${r.reason}`);
  }
  /** The adapter each user's phone registered with (a phone calls through its own adapter). */
  const where = new Map<string, RunningAdapter>();
  async function callOk(from: string, to: string) {
    const r = await probeInvite(phones.get(from).element, {
      caller: from,
      callee: to,
      adapter: sipPeer(where.get(from) as RunningAdapter),
      domain: '127.0.0.1',
    });
    assert.equal(r.status, 302, `${from} -> ${to}: ${r.status} ${r.reason}`);
    assert.equal(r.contact, `<${phones.get(to).contactUri}>`);
  }
  const inDatabase = () => Number(pg.psql('shared', 'SELECT count(*) FROM registry_users'));
  const live = () => boots.filter((b) => !b.server.ring.stopped);

  /** Until every live member's predecessor and successor list are the live members next to it. */
  async function ringSettled(limitMs = 30_000): Promise<void> {
    const end = Date.now() + limitMs;
    for (;;) {
      const rings = [...live().map((b) => b.server.ring), ...adapters.map((a) => a.node.ring)];
      const ids = rings.map((r) => r.id).sort();
      const good = rings.every((r) => {
        const i = ids.indexOf(r.id);
        const have = r.succs.entries().map((e) => e.id);
        return (
          r.pred?.id === ids[(i - 1 + ids.length) % ids.length] &&
          have.length > 0 &&
          have.every((id, j) => ids[(i + 1 + j) % ids.length] === id)
        );
      });
      if (good) return;
      if (Date.now() > end) throw new Error('ring did not settle');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  before(async () => {
    pg = await TestPostgres.start();
    url = pg.createDatabase('shared');
    base = mkdtempSync(join(tmpdir(), 'secp2psip-shared-'));
    for (let i = 0; i < 3; i++) {
      const dir = join(base, `boot-${i}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const id = Identity.loadOrCreate(join(dir, 'node'));
      infos.push({ addr: `127.0.0.1:${await freePort()}`, key: id.bundle.sig });
    }
    boots.push(...(await Promise.all([0, 1, 2].map(startBoot))));
    for (let i = 0; i < 3; i++) adapters.push(await startAdapter(i, i));
    await ringSettled();
  });

  const phonesToStop: Phone[] = [];

  after(async () => {
    for (const p of phonesToStop) p.proc.kill('SIGKILL');
    await phones.close();
    for (const a of adapters) await a.close().catch(() => {});
    for (const b of boots) await b.close().catch(() => {});
    pg?.destroy();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('any bootstrap binds any name, none forwards, and of concurrent claims of a name exactly one wins', async () => {
    // A name owned (by rendezvous) by another bootstrap is bound where it arrives.
    for (const [i, a] of adapters.entries()) {
      const name = ownedBy((i + 1) % 3, 'own');
      const before = boots[i].server.stats.registered;
      await registerOk(name, a);
      assert.equal(boots[i].server.stats.registered, before + 1, `${name} bound by bootstrap ${i}`);
    }
    // Three phones, each at an adapter of another bootstrap, claim each name at the same moment.
    for (let round = 0; round < 6; round++) {
      const name = `race${round}`;
      const contenders = await Promise.all(adapters.map(() => phones.add(name, false)));
      const answers = await Promise.all(contenders.map((p, i) => p.register(sipPeer(adapters[i]))));
      const won = answers.flatMap((r, i) => (r.status === 200 ? [i] : []));
      assert.equal(won.length, 1, `${name}: ${answers.map((r) => `${r.status} ${r.reason}`).join(' | ')}`);
      for (const r of answers.filter((x) => x.status !== 200)) {
        assert.equal(r.status, 403);
        assert.match(r.reason, new RegExp(`'${name}' is already registered with another key`));
      }
      phones.keep(contenders[won[0]]);
      where.set(name, adapters[won[0]]);
    }
    for (const b of boots) assert.equal(b.server.stats.forwarded, 0, 'a shared registry forwards nothing');
    assert.equal(inDatabase(), 9);
    // Calls reach each winner's phone, whichever bootstrap bound it.
    await callOk('race0', 'race1');
    await callOk('race2', 'race0');
  });

  it('with a bootstrap crashed, every registration succeeds through the others', async () => {
    await crashBootstrap(boots[0]);
    // Adapter 0 was admitted by bootstrap 0; names owned by bootstrap 0 would be lost with registries of their own.
    const fresh: string[] = [];
    for (const [i, a] of adapters.entries())
      for (const b of [0, 1, 2]) {
        const name = ownedBy(b, `down${i}x`);
        await registerOk(name, a);
        fresh.push(name);
      }
    assert.equal(inDatabase(), 9 + fresh.length);
    await ringSettled();
    await callOk(fresh[0], fresh[4]);
    await callOk(fresh[8], fresh[1]);
    // It comes back and binds names again.
    boots[0] = await startBoot(0);
    await ringSettled();
    await registerOk(ownedBy(2, 'back'), adapters[0]);
  });

  it('with the database stopped mid-load, phones get 503 with Retry-After, calls work, and all recovers', async () => {
    const bound = new Set<string>();
    const deferred = new Set<string>();
    const names = Array.from({ length: 24 }, (_, i) => `load${i}`);
    let stopped = false;
    for (const [i, name] of names.entries()) {
      if (i === 8) {
        pg.stop();
        stopped = true;
      }
      const r = await register(name, adapters[i % 3]);
      if (r.status === 200) bound.add(name);
      else {
        assert.ok(stopped, `${name} refused before the outage: ${r.status} ${r.reason}`);
        assert.equal(r.status, 503, `${name}: ${r.status} ${r.reason}`);
        assert.match(getHeader(r, 'Retry-After') ?? '', /^\d+$/);
        assert.equal(r.reason, 'the name registry is unreachable; try again shortly');
        deferred.add(name);
      }
      // Calls between users bound before the outage go on from the ring.
      if (stopped && i % 4 === 0) await callOk('load0', 'load5');
    }
    assert.ok(bound.size >= 8 && deferred.size >= 12, `bound ${bound.size}, deferred ${deferred.size}`);
    // An unmodified phone (baresip) registering now is told why and when to come back. (It comes back after its
    // own back-off of 15-60 s, whatever Retry-After says: longer than this test waits.)
    const bare = haveBinary('baresip')
      ? await startPhone(join(base, 'phones'), 'bare', `sip:bare@${adapters[1].sipAddr}`)
      : undefined;
    if (bare) {
      phonesToStop.push(bare);
      await waitForPhone('a 503 with Retry-After', bare, /SIP\/2\.0 503 the name registry is unreachable/);
      assert.match(bare.out(), /Retry-After: \d+/);
    }
    pg.restart();
    // The phones come back (as Retry-After asks): every deferred name is bound, with no restart of anything.
    for (const name of deferred) {
      let r = await register(name, adapters[Number(name.slice(4)) % 3]);
      for (let i = 0; r.status === 503 && i < 20; i++) {
        await new Promise((res) => setTimeout(res, 500));
        r = await register(name, adapters[Number(name.slice(4)) % 3]);
      }
      assert.equal(r.status, 200, `${name} after the outage: ${r.status} ${r.reason}`);
    }
    // Each registration is marked published just after its answer: give the last marks a moment.
    const published = () =>
      Number(pg.psql('shared', `SELECT count(*) FROM registry_users WHERE name LIKE 'load%' AND state = 'published'`));
    for (let i = 0; published() !== names.length && i < 20; i++) await new Promise((res) => setTimeout(res, 100));
    assert.equal(published(), names.length, 'every name bound and published, none lost');
    await callOk(names[names.length - 1], 'race0');
  });
});
