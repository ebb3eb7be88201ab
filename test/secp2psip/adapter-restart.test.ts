import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { probeInvite } from '../../src/harness/call-probe.ts';
import { sipPeer } from '../../src/harness/local-overlay.ts';
import { Identity } from '../../src/identity/identity.ts';
import { bootstrapSpecOf, parseBootstrapSpec, resolveBootstrap } from '../../src/secp2psip/bootstrap-spec.ts';
import {
  type AdapterDaemonOptions,
  type RunningAdapter,
  type RunningBootstrap,
  startAdapterDaemon,
  startBootstrapDaemon,
} from '../../src/secp2psip/daemon.ts';
import type { BootstrapInfo } from '../../src/secp2psip/messages.ts';
import { authorityFor } from '../../src/secp2psip/name-authority.ts';
import { getHeader } from '../../src/sip/message.ts';
import { freePort } from '../sip/e2e-helpers.ts';
import { eventually } from './procs.ts';
import { TestPhones, udpPeer } from './phones.ts';

/**
 * Adapter restarts against faults of the bootstraps (issue 17), with two
 * bootstraps over loopback TLS:
 * - D6: a user whose registration with the bootstrap fails after the restart
 *   is retried with a growing wait until it succeeds, without its phone.
 * - D7: while the adapter cannot serve a user yet, phones get 503 with
 *   Retry-After (not 403 "not registered" or 404 "unknown user").
 * - D8: an adapter learns every bootstrap of the set, keeps it in its data
 *   directory, and at start fails over to another when its configured one is down.
 */
describe('adapter restarts with bootstraps down', { timeout: 180_000 }, () => {
  let base = '';
  const infos: BootstrapInfo[] = [];
  const boots: (RunningBootstrap | undefined)[] = [];
  const running: RunningAdapter[] = [];
  const phones = new TestPhones();
  const ports: Record<string, { sip: number; rpc: number }> = {};
  /** Users whose names bootstrap 0 (caller) and bootstrap 1 (callee) own. */
  let caller = '';
  let callee = '';
  let Z: RunningAdapter;
  let Y: RunningAdapter;

  const startBoot = async (i: number) => {
    boots[i] = await startBootstrapDaemon({
      host: '127.0.0.1',
      port: Number(infos[i].addr.split(':')[1]),
      dataDir: join(base, `boot-${i}`),
      k: 2,
      n: 3,
      peers: infos,
      stabilizeMs: 500,
    });
  };
  const stopBoot = async (i: number) => {
    await boots[i]?.close();
    boots[i] = undefined;
  };
  async function startAdapter(name: string, extra: Partial<AdapterDaemonOptions> = {}): Promise<RunningAdapter> {
    ports[name] ??= { sip: await freePort(), rpc: await freePort() };
    const a = await startAdapterDaemon({
      openRegistration: true,
      sipHost: '127.0.0.1',
      sipPort: ports[name].sip,
      rpcPort: ports[name].rpc,
      bootstrap: infos[0],
      dataDir: join(base, `adapter-${name}`),
      stabilizeMs: 500,
      ...extra,
    });
    running.push(a);
    return a;
  }
  async function stopAdapter(a: RunningAdapter): Promise<void> {
    running.splice(running.indexOf(a), 1);
    await a.close();
  }
  /** Until no live member of the ring has the node `gone` as its predecessor or among its successors. */
  const ringWithout = async (gone: string | undefined) => {
    const live = () => [boots[0]?.server.ring, ...running.map((a) => a.node.ring)].filter((r) => r !== undefined);
    await eventually('the ring without the stopped node', () =>
      live().every((r) => r.pred?.id !== gone && !r.succs.entries().some((e) => e.id === gone)),
    );
  };
  const call = (from: string, at: RunningAdapter, to: string) =>
    probeInvite(phones.get(from).element, { caller: from, callee: to, adapter: sipPeer(at), domain: '127.0.0.1' });

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-adapter-restart-'));
    for (let i = 0; i < 2; i++) {
      const dir = join(base, `boot-${i}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const id = Identity.loadOrCreate(join(dir, 'node'));
      infos.push({ addr: `127.0.0.1:${await freePort()}`, key: id.bundle.sig });
    }
    await Promise.all([0, 1].map(startBoot));
    for (let j = 0; !caller || !callee; j++) {
      const owner = authorityFor(`user${j}`, infos) === infos[0] ? 0 : 1;
      if (owner === 0 && !caller) caller = `user${j}`;
      if (owner === 1 && !callee) callee = `user${j}`;
    }
    Z = await startAdapter('Z');
    Y = await startAdapter('Y');
    // Two more members, so that the ring keeps copies of every record while a bootstrap is down.
    await startAdapter('W1');
    await startAdapter('W2');
    for (const [user, at] of [
      [caller, Z],
      [callee, Y],
    ] as const) {
      const r = await (await phones.add(user)).register(sipPeer(at));
      assert.equal(r.status, 200, `${user}: ${r.status} ${r.reason}`);
    }
    const first = await call(caller, Z, callee);
    assert.equal(first.status, 302, `${first.status} ${first.reason}`);
  });

  after(async () => {
    await phones.close();
    for (const a of [...running]) await a.close().catch(() => {});
    for (const b of boots) await b?.close().catch(() => {});
    rmSync(base, { recursive: true, force: true });
  });

  it("D6, D7: a restored user the bootstrap cannot take yet gets 503 with Retry-After, and is registered again once it can, without its phone's REGISTER", async () => {
    await stopAdapter(Y);
    // The name's authority is down: Y is admitted by bootstrap 0, which cannot forward the registration.
    const gone = boots[1]?.server.ring.id;
    await stopBoot(1);
    Y = await startAdapter('Y');
    assert.deepEqual(Y.adapter.retrying, [callee], 'the restored user is being retried');
    // Calls read keys from the ring: let it notice that bootstrap 1 is gone first (this is not what is tested).
    await ringWithout(gone);

    try {
      const out = await call(callee, Y, caller);
      assert.equal(out.status, 503, `the callee's own phone: ${out.status} ${out.reason}`);
      assert.ok(Number(out.retryAfter) > 0, `Retry-After: ${out.retryAfter}`);
      // A ring read at the caller's adapter that failed while the ring repairs itself after the bootstrap left
      // (480, with Retry-After when too few key pieces answered; a 404 of its own lookup) is asked again: not
      // what is tested. Too few pieces is never a 403: that is kept for pieces refused or disagreeing.
      const repairing = (r: { status: number; reason: string; retryAfter?: string }) => {
        assert.ok(!(r.status === 403 && r.reason.includes('SHARING_NOT_ENOUGH_PIECES')), `${r.status} ${r.reason}`);
        if (/key of \S+ unavailable/.test(r.reason))
          assert.ok(r.status === 480 && Number(r.retryAfter) > 0, `${r.status} ${r.reason} ${r.retryAfter}`);
        return r.status === 480 || (r.status === 404 && !r.reason.includes("'s adapter:"));
      };
      let into = await call(caller, Z, callee);
      for (let i = 0; i < 20 && repairing(into); i++) {
        await new Promise((r) => setTimeout(r, 500));
        into = await call(caller, Z, callee);
      }
      assert.equal(into.status, 503, `a caller elsewhere: ${into.status} ${into.reason}`);
      assert.ok(Number(into.retryAfter) > 0, `Retry-After: ${into.retryAfter}`);
    } finally {
      await startBoot(1);
    }
    await eventually('the restored user registered again', () => Y.adapter.retrying.length === 0, 30_000);
    assert.ok(Y.node.users.has(callee));
    const end = Date.now() + 20_000;
    let last = await call(caller, Z, callee);
    while (last.status !== 302 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 250));
      last = await call(caller, Z, callee);
    }
    assert.equal(last.status, 302, `${last.status} ${last.reason}`);
    assert.equal(last.contact, `<${phones.get(callee).contactUri}>`);
  });

  it('D7: while the restarted adapter registers its users again, callers get 503 with Retry-After, never 404', async () => {
    await stopAdapter(Y);
    const gone = boots[1]?.server.ring.id;
    await stopBoot(1);
    // The ring first routes around bootstrap 1: a read that met the silent port below would wait out its RPC
    // timeouts, and the caller's first call could outlast the whole restart.
    await ringWithout(gone);
    // Bootstrap 1's port answers TCP but never TLS: the registration forwarded there hangs until it times out,
    // so the restart's first registration pass takes seconds.
    const held: Socket[] = [];
    const hole = createServer((c) => held.push(c));
    await new Promise<void>((r) => hole.listen(Number(infos[1].addr.split(':')[1]), '127.0.0.1', r));
    let started: RunningAdapter | undefined;
    const starting = startAdapter('Y').then((a) => {
      started = a;
      return a;
    });
    const seen: string[] = [];
    try {
      while (!started) {
        const r = await call(caller, Z, callee);
        seen.push(
          `${r.status}${r.status === 503 && Number(r.retryAfter) > 0 ? '+Retry-After' : ''}${r.status === 403 || r.status === 404 ? ` (${r.reason})` : ''}`,
        );
      }
      Y = await starting;
    } finally {
      for (const c of held) c.destroy();
      await new Promise((r) => hole.close(r));
      await startBoot(1);
    }
    assert.ok(seen.includes('503+Retry-After'), seen.join(' '));
    // From the moment the restarted adapter answers, it never says "unknown user" or "not registered": no 403 or
    // 404 that the callee's adapter gave (`<callee>'s adapter: ...`). The caller's own ring reads may still fail
    // for a moment (a 404, or a 480 with Retry-After for too few key pieces, while records move between members,
    // bootstrap 1 being away): the ring's repair, not the restart, and not what this checks.
    const fromRestart = seen.slice(seen.indexOf('503+Retry-After'));
    assert.ok(!fromRestart.some((s) => /^40[34] \(.*'s adapter:/.test(s)), seen.join(' '));
    await eventually('the restored user registered again', () => Y.adapter.retrying.length === 0, 30_000);
  });

  it('D8: an adapter restarted while its configured bootstrap is down is admitted by another of the set', async () => {
    const spec = bootstrapSpecOf(infos[0]);
    const X = await startAdapter('X');
    const setFile = join(base, 'adapter-X', 'bootstraps.json');
    assert.ok(existsSync(setFile), 'the set is kept in the data directory');
    assert.equal((JSON.parse(readFileSync(setFile, 'utf8')) as { bootstraps: unknown[] }).bootstraps.length, 2);
    await stopAdapter(X);
    await stopBoot(0);

    // The command line names bootstrap 0 by its hash: its key is known from the set, no handshake needed.
    const parsed = parseBootstrapSpec(spec);
    assert.ok(parsed.ok);
    const resolved = await resolveBootstrap(
      parsed.value,
      async () => {
        throw new Error('bootstrap 0 is down');
      },
      join(base, 'adapter-X'),
    );
    assert.ok(Buffer.from(resolved.key).equals(Buffer.from(infos[0].key)));

    const again = await startAdapter('X', { bootstrap: resolved });
    assert.equal(again.bootstrap.addr, infos[1].addr, 'admitted by bootstrap 1');
    // It registers users through bootstrap 1 now (a name bootstrap 1 owns: bootstrap 0 is down).
    let name = 'xavier';
    for (let j = 0; authorityFor(name, infos) !== infos[1]; j++) name = `xavier${j}`;
    const r = await (await phones.add(name)).register(udpPeer(again.sipAddr));
    assert.equal(r.status, 200, `${r.status} ${r.reason}`);
    await stopAdapter(again);
  });

  it('D7, D8: while no bootstrap answers, the starting adapter asks phones to retry, and starts once one is back', async () => {
    await stopBoot(1);
    const starting = startAdapter('X', { bootstrapWaitMs: 60_000 });
    starting.catch(() => {});
    const p = await phones.add('yvonne');
    const dest = udpPeer(`127.0.0.1:${ports.X.sip}`);
    let r = await p.register(dest);
    for (let i = 0; i < 50 && r.status === 408; i++) r = await p.register(dest);
    assert.equal(r.status, 503, `${r.status} ${r.reason}`);
    assert.ok(Number(getHeader(r, 'Retry-After')) > 0, 'with Retry-After');
    await startBoot(1);
    const X = await starting;
    assert.ok(X.node.ring.successor.id !== X.node.ring.id, 'on the ring');
  });
});
