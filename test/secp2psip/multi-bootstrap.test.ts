import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.ts';
import { probeInvite } from '../../src/harness/call-probe.ts';
import {
  type RunningAdapter,
  type RunningBootstrap,
  startAdapterDaemon,
  startBootstrapDaemon,
} from '../../src/secp2psip/daemon.ts';
import { sipPeer } from '../../src/harness/local-overlay.ts';
import type { BootstrapInfo } from '../../src/secp2psip/messages.ts';
import { authorityFor } from '../../src/secp2psip/name-authority.ts';
import { openRingValue, pieceKey } from '../../src/secp2psip/ring-records.ts';
import { freePort } from '../sip/e2e-helpers.ts';
import { holderIds } from '../support/ring.ts';
import { TestPhones } from './phones.ts';

/**
 * Three bootstrap servers serving one overlay over loopback TLS, adapters
 * admitted by different ones. Each name has one authority (name-authority.ts);
 * the others forward its REGISTERs there.
 */
describe('several bootstraps over TLS', { timeout: 120_000 }, () => {
  const K = 2;
  const N = 3;
  let base = '';
  const infos: BootstrapInfo[] = [];
  const boots: RunningBootstrap[] = [];
  const adapters: RunningAdapter[] = [];
  /** names[b]: user names whose authority is bootstrap b. */
  const names: string[][] = [[], [], []];

  const startBoot = (i: number) =>
    startBootstrapDaemon({
      host: '127.0.0.1',
      port: Number(infos[i].addr.split(':')[1]),
      dataDir: join(base, `boot-${i}`),
      k: K,
      n: N,
      peers: infos,
      stabilizeMs: 500,
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

  const phones = new TestPhones();
  async function register(user: string, at: RunningAdapter) {
    const p = phones.has(user) ? phones.get(user) : await phones.add(user, false);
    const r = await p.register(sipPeer(at));
    if (r.status === 200) phones.keep(p);
    return r;
  }
  async function registerOk(user: string, at: RunningAdapter) {
    const r = await register(user, at);
    assert.equal(r.status, 200, `${user} at ${at.sipAddr}: ${r.status} ${r.reason}`);
  }
  const call = (from: string, at: RunningAdapter, to: string) =>
    probeInvite(phones.get(from).element, {
      caller: from,
      callee: to,
      adapter: sipPeer(at),
      domain: '127.0.0.1',
    });
  const owner = (name: string) => infos.findIndex((b) => b.key === authorityFor(name, infos).key);
  /** Bootstrap keys that signed the stored pieces of `name`, as indexes into `infos`. */
  function pieceSigners(name: string): Set<number> {
    const out = new Set<number>();
    const rings = [...boots.map((b) => b.server.ring), ...adapters.map((a) => a.node.ring)];
    for (let i = 1; i <= N; i++)
      for (const ring of rings) {
        const r = ring.store.get(pieceKey(name, i));
        const env = r ? openRingValue(r.value) : undefined;
        if (env?.ok) out.add(infos.findIndex((b) => Buffer.from(b.key).equals(Buffer.from(env.value.by))));
      }
    return out;
  }

  /** Until every member's predecessor and successor list are the live members next to it (all in this process). */
  async function ringSettled(limitMs = 20_000): Promise<void> {
    const end = Date.now() + limitMs;
    for (;;) {
      const rings = [...boots.map((b) => b.server.ring), ...adapters.map((a) => a.node.ring)];
      const ids = rings.map((r) => r.id).sort();
      const good = rings.every((r) => {
        const i = ids.indexOf(r.id);
        const want = Array.from({ length: ids.length - 1 }, (_, j) => ids[(i + 1 + j) % ids.length]);
        const have = r.succs.entries().map((e) => e.id);
        return (
          r.pred?.id === ids[(i - 1 + ids.length) % ids.length] &&
          have.length > 0 &&
          have.every((id, j) => want[j] === id)
        );
      });
      if (good) return;
      if (Date.now() > end) throw new Error('ring did not settle');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Keys the ring's members hold that `ring` owns or holds the first replica of (among the live
   * members) but does not hold: what a node (re)joining pulls from its successor. The replica
   * after that comes back with the publisher's next republish.
   */
  function missingAt(ring: RunningBootstrap['server']['ring']): string[] {
    const rings = [...boots.map((b) => b.server.ring), ...adapters.map((a) => a.node.ring)];
    const ids = rings.map((r) => r.id).sort();
    const keys = new Set(rings.flatMap((r) => r.store.all().map((rec) => rec.key)));
    return [...keys].filter((key) => holderIds(ids, key, 2).includes(ring.id) && !ring.store.has(key));
  }

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-multiboot-'));
    // Every bootstrap is configured with the whole set: keys made ahead, as an operator would.
    for (let i = 0; i < 3; i++) {
      const dir = join(base, `boot-${i}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const id = Identity.loadOrCreate(join(dir, 'node'));
      infos.push({ addr: `127.0.0.1:${await freePort()}`, key: id.bundle.sig });
    }
    // Started at the same moment: the founding order (daemon.ts foundingRank) makes them one ring.
    boots.push(...(await Promise.all([0, 1, 2].map(startBoot))));
    for (let i = 0; i < 3; i++) adapters.push(await startAdapter(i, i));
    // What is tested here is how the bootstraps agree on names, not how fast six nodes form a ring.
    await ringSettled();
    for (let j = 0; names.some((l) => l.length < 3); j++) {
      const l = names[owner(`user${j}`)];
      if (l.length < 3) l.push(`user${j}`);
    }
  });

  after(async () => {
    await phones.close();
    for (const a of adapters) await a.close().catch(() => {});
    for (const b of boots) await b.close().catch(() => {});
    rmSync(base, { recursive: true, force: true });
  });

  it('a name registered through one bootstrap is refused to another key through another, with the reason', async () => {
    const [A0, A1, A2] = adapters;
    // u0 is owned by bootstrap 0 but registered through bootstrap 1 (forwarded); u1 directly at its owner.
    const u0 = names[0][0];
    const u1 = names[1][0];
    const u2 = names[2][0];
    await registerOk(u0, A1);
    await registerOk(u1, A1);
    await registerOk(u2, A0);
    assert.ok(boots[1].server.stats.forwarded >= 1 && boots[0].server.stats.forwarded >= 1);
    for (const [b, u] of [u0, u1, u2].entries())
      for (const [i, boot] of boots.entries())
        assert.equal(boot.server.registry.get(u) !== undefined, i === b, `${u} only in bootstrap ${b}'s registry`);
    // Other adapters hold other keys: through any bootstrap, the name stays with the first key.
    for (const [u, at] of [
      [u0, A2],
      [u0, A0],
      [u1, A2],
      [u2, A1],
    ] as const) {
      const thief = await phones.add(u, false);
      const r = await thief.register(sipPeer(at));
      assert.equal(r.status, 403, `${u} at ${at.sipAddr}`);
      assert.match(r.reason, new RegExp(`'${u}' is already registered with another key`));
    }
  });

  it('calls between users admitted by different bootstraps verify, each key split and signed by its own bootstrap', async () => {
    const [A0, A1] = adapters;
    const [u0, u1, u2] = [names[0][0], names[1][0], names[2][0]];
    for (const [b, u] of [u0, u1, u2].entries()) assert.deepEqual([...pieceSigners(u)], [b], `pieces of ${u}`);
    for (const [from, at, to] of [
      [u0, A1, u2],
      [u2, A0, u1],
      [u1, A1, u0],
    ] as const) {
      const r = await call(from, at, to);
      assert.equal(r.status, 302, `${from} -> ${to}: ${r.reason}`);
      assert.equal(r.contact, `<${phones.get(to).contactUri}>`);
    }
  });

  it('the same key through another bootstrap is accepted', async () => {
    // Adapter 1 comes back configured with bootstrap 2: its users (keys on disk, phones' bindings kept)
    // register again through bootstrap 2, which forwards them to their owners.
    const [u0, u1] = [names[0][0], names[1][0]];
    const forwarded = boots[2].server.stats.forwarded;
    await adapters[1].close();
    adapters[1] = await startAdapter(1, 2);
    assert.equal(boots[2].server.stats.forwarded - forwarded, 2);
    assert.ok(adapters[1].node.users.has(u0) && adapters[1].node.users.has(u1));
    await ringSettled();
    const r = await call(names[2][0], adapters[0], u0);
    assert.equal(r.status, 302, r.reason);
    assert.equal(r.contact, `<${phones.get(u0).contactUri}>`);
    // And a phone re-registering there is accepted too (the same key again).
    await registerOk(u1, adapters[1]);
  });

  for (const how of ['stopped', 'crashed'] as const)
    it(`a bootstrap ${how} and restarted, owning none of the names, still forwards them to their owners`, async () => {
      const b2 = boots[2];
      if (how === 'stopped') await b2.close();
      else {
        // No leave: the ring still lists it when it comes back.
        b2.server.ring.stop();
        await b2.server.endpoint.close();
        b2.server.registry.close();
      }
      boots[2] = await startBoot(2);
      // Whether it left or crashed, it comes back with the records of its range (from its successor at once,
      // or by the re-replication of its neighbours' next ticks when one of them was still settling).
      for (let i = 0; i < 20 && missingAt(boots[2].server.ring).length > 0; i++)
        await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(missingAt(boots[2].server.ring), [], 'records the restarted bootstrap should hold');
      const [A0, , A2] = adapters;
      const fresh = names[0][how === 'stopped' ? 1 : 2];
      await registerOk(fresh, A2);
      assert.ok(boots[0].server.registry.get(fresh), 'the owner has it');
      assert.equal(boots[2].server.registry.get(fresh), undefined);
      assert.ok(boots[2].server.stats.forwarded >= 1);
      const thief = await phones.add(names[1][0], false);
      const refused = await thief.register(sipPeer(A2));
      assert.equal(refused.status, 403);
      assert.match(refused.reason, /already registered with another key/);
      // Calls verify once the ring has taken the bootstrap back in.
      await ringSettled();
      for (const [from, at, to] of [
        [names[2][0], A0, fresh],
        [fresh, A2, names[2][0]],
      ] as const) {
        const r = await call(from, at, to);
        assert.equal(r.status, 302, `${from} -> ${to}: ${r.reason}`);
        assert.equal(r.contact, `<${phones.get(to).contactUri}>`);
      }
    });

  it('every bootstrap crashed at once comes back at its place through the adapters it knows', async () => {
    for (const b of boots) {
      b.server.ring.stop();
      await b.server.endpoint.close();
      b.server.registry.close();
    }
    // The first finds no peer bootstrap up, only its users' adapters, whose ring still lists it.
    for (let i = 0; i < 3; i++) boots[i] = await startBoot(i);
    await ringSettled();
    const [A0, A1, A2] = adapters;
    const fresh = names[1][1];
    await registerOk(fresh, A0);
    assert.ok(boots[1].server.registry.get(fresh));
    const r = await call(names[2][0], A0, fresh);
    assert.equal(r.status, 302, r.reason);
    const back = await call(fresh, A0, names[0][0]);
    assert.equal(back.status, 302, back.reason);
    const thief = await phones.add(names[0][0], false);
    assert.equal((await thief.register(sipPeer(A2))).status, 403);
    assert.ok(A1.node.users.size > 0);
  });
});
