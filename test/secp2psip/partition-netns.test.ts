import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { authorityFor } from '../../src/secp2psip/name-authority.ts';
import type { NetnsDaemon } from '../support/netns-daemons.ts';
import { type DaemonSpec, NetnsLayout } from '../support/netns-layout.ts';
import { type Host, testnetUnavailable } from '../support/testnet.ts';
import { type NetnsAgent, startNetnsAgent } from './netns-agent.ts';

/**
 * A partition of real daemons on separate hosts (network namespaces, see
 * test/support/testnet.ts): two bootstraps (one per side, so names can be
 * registered on both sides while cut off) and six adapters, each on a host
 * of its own with its phones. The network is cut into two sides for
 * CUT_MS, users register on each side during the cut, then the cut heals.
 * Asserted: the ring is one again within 30 s of the heal (a walk along
 * successor pointers from either bootstrap meets every member), and every
 * user registered before, during or after the cut is callable from every
 * adapter (an INVITE to the user's name gets a 302 to that user's phone),
 * with the verified-user cache off so every call goes through the ring.
 * Prints the time from the heal to each.
 */
const CUT_MS = 40_000;
const RING_WITHIN_MS = 30_000;
const CALLABLE_WITHIN_MS = 60_000;

interface User {
  name: string;
  /** Index into adapters. */
  at: number;
  contact: string;
  when: 'before' | 'during' | 'after';
}

const unavailable = testnetUnavailable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Side 0: bootstrap boot0, adapters a2..a4; side 1: bootstrap boot1, adapters a5..a7; each on a host of its own. */
const BOOTS = ['boot0', 'boot1'];
const ADAPTERS = ['a2', 'a3', 'a4', 'a5', 'a6', 'a7'];
const sideOf = (i: number) => (i < 3 ? 0 : 1);

describe('partition of real daemons on separate hosts', { skip: unavailable ?? false, timeout: 240_000 }, () => {
  let lay: NetnsLayout;
  const daemons: NetnsDaemon[] = [];
  const boots: { host: Host; addr: string; key: string; spec: string; ringId: string }[] = [];
  const adapters: (NetnsDaemon & { sip: string; ringId: string; side: 0 | 1; boot: number })[] = [];
  const agents: NetnsAgent[] = [];
  const users: User[] = [];
  const sides: Host[][] = [[], []];

  const ringIds = () => new Set([...boots.map((b) => b.ringId), ...adapters.map((a) => a.ringId)]);

  /** Walk the ring from bootstrap `b` (from the first adapter's host on that side): the ids met, in order. */
  async function walkFrom(b: number): Promise<{ ids: string[]; addrs: string[]; closed: boolean; error?: string }> {
    const via = agents[adapters.findIndex((a) => a.boot === b)];
    const r = (await via.ask({ op: 'walk', bootstrap: { addr: boots[b].addr, key: boots[b].key } })) as {
      hops: { id: string; addr: string }[];
      closed: boolean;
      error?: string;
    };
    return { ids: r.hops.map((h) => h.id), addrs: r.hops.map((h) => h.addr), closed: r.closed, error: r.error };
  }

  /** One ring: the walk from every bootstrap closes after meeting every member. */
  async function oneRing(): Promise<boolean> {
    const all = ringIds();
    for (let b = 0; b < boots.length; b++) {
      const w = await walkFrom(b).catch(() => null);
      if (!w?.closed || w.ids.length !== all.size || !w.ids.every((id) => all.has(id))) return false;
    }
    return true;
  }

  /** A name whose authority is bootstrap `b` (registrations succeed on b's side while cut off). */
  function nameOwnedBy(prefix: string, b: number, taken: Set<string>): string {
    const infos = boots.map((x) => ({ addr: x.addr, key: new Uint8Array(Buffer.from(x.key, 'hex')) }));
    for (let i = 0; ; i++) {
      const name = `${prefix}${i}`;
      if (taken.has(name)) continue;
      if (authorityFor(name, infos).addr === boots[b].addr) {
        taken.add(name);
        return name;
      }
    }
  }

  /** Register until a 200; the answers before it, each with how long it took. */
  async function register(name: string, at: number, when: User['when'], withinMs = 30_000): Promise<string[]> {
    const end = Date.now() + withinMs;
    const tries: string[] = [];
    let last = '';
    while (Date.now() < end) {
      const sent = Date.now();
      const r = (await agents[at].ask({ op: 'register', user: name, adapter: adapters[at].sip })) as {
        status: number;
        reason: string;
        contact: string;
      };
      tries.push(`${r.status} in ${((Date.now() - sent) / 1000).toFixed(1)} s`);
      if (r.status === 200) {
        users.push({ name, at, contact: r.contact, when });
        return tries;
      }
      last = `${r.status} ${r.reason}`;
      await sleep(500);
    }
    assert.fail(`${name} could not register at adapter ${at} (${when} the cut): ${last}`);
  }

  /**
   * Calls from every adapter, by the user registered there at `callers` time, to every user that
   * `reachable` selects: the calls that did not get a 302 to the callee's phone.
   */
  async function failingCalls(
    callers: User['when'] = 'before',
    reachable = (_from: number, _to: User) => true,
  ): Promise<string[]> {
    const failed: string[] = [];
    await Promise.all(
      adapters.map(async (a, i) => {
        const caller = users.find((u) => u.at === i && u.when === callers);
        if (!caller) throw new Error(`no caller at adapter ${i}`);
        for (const callee of users) {
          if (callee === caller || !reachable(i, callee)) continue;
          const r = (await agents[i].ask({ op: 'invite', from: caller.name, to: callee.name, adapter: a.sip })) as {
            status: number;
            reason: string;
            contact?: string;
          };
          if (r.status !== 302 || !r.contact?.includes(callee.contact))
            failed.push(`${caller.name}@a${i} -> ${callee.name}(${callee.when}): ${r.status} ${r.reason}`);
        }
      }),
    );
    return failed;
  }

  before(async () => {
    const daemonSpecs: Record<string, DaemonSpec> = {};
    for (const b of BOOTS) daemonSpecs[b] = { kind: 'bootstrap', on: b, args: ['--log-level', 'info'] };
    for (const [i, a] of ADAPTERS.entries())
      daemonSpecs[a] = {
        kind: 'adapter',
        on: a,
        bootstrap: BOOTS[sideOf(i)],
        args: ['--cache-ms', '0', '--log-level', 'info'],
      };
    lay = await NetnsLayout.build({
      prefix: 'sp2tpart',
      tmp: 'secp2psip-partition-',
      hosts: [...BOOTS, ...ADAPTERS],
      daemons: daemonSpecs,
    });
    for (const side of [0, 1])
      sides[side].push(lay.host(BOOTS[side]), ...ADAPTERS.filter((_, i) => sideOf(i) === side).map((a) => lay.host(a)));
    // The phones' agents start meanwhile (one per adapter host, in adapter order).
    const agentsStarting = Promise.all(ADAPTERS.map((a) => startNetnsAgent(lay.net, lay.host(a))));
    agentsStarting.catch(() => {}); // awaited below; a failure before that is reported there or by the daemons
    const started = await Promise.all(BOOTS.map((b) => lay.startDaemon(b)));
    for (const [b, { d, m }] of started.entries()) {
      daemons.push(d);
      assert.equal(m[2], lay.key(BOOTS[b]));
      boots.push({ host: d.host, addr: m[1].slice(m[1].lastIndexOf('@') + 1), key: m[2], spec: m[1], ringId: '' });
    }
    const starting = ADAPTERS.map(async (a, i) => {
      const side = sideOf(i);
      const { d, m } = await lay.startDaemon(a);
      const ring = /^ring ([0-9a-f]{40}) /m.exec(d.out());
      assert.ok(ring, `${a}: no ring id in ${d.out()}`);
      return { ...d, sip: m[1], ringId: ring[1], side: side as 0 | 1, boot: side };
    });
    adapters.push(...(await Promise.all(starting)));
    daemons.push(...adapters);
    agents.push(...(await agentsStarting));
    // The bootstraps' ring ids (assigned by their registries): a walk meets them at their addresses.
    const formed = Date.now() + 30_000;
    const none = (e: unknown) => ({ ids: [] as string[], addrs: [] as string[], closed: false, error: String(e) });
    let w = await walkFrom(0).catch(none);
    while (!(w.closed && w.ids.length === 2 + adapters.length)) {
      assert.ok(Date.now() < formed, `the ring did not form: ${JSON.stringify(w)}`);
      await sleep(500);
      w = await walkFrom(0).catch(none);
    }
    for (const b of boots) b.ringId = w.ids[w.addrs.indexOf(b.addr)] ?? '';
    assert.ok(
      boots.every((b) => b.ringId && !adapters.some((a) => a.ringId === b.ringId)),
      `walk from bootstrap 0: ${JSON.stringify(w)}`,
    );
  });

  after(async () => {
    await lay?.net.destroy();
    // SECP2PSIP_TEST_LOGS=<dir>: keep every daemon's log there.
    const keep = process.env.SECP2PSIP_TEST_LOGS;
    if (keep) {
      mkdirSync(keep, { recursive: true });
      for (const d of daemons) writeFileSync(join(keep, `${d.host.name}.log`), d.err());
    }
    await lay?.destroy();
  });

  /** Calls that still failed when the wait after the heal ended (filled by the first test). */
  let lastFailed: string[] | undefined;

  it('merges into one ring within 30 s of the heal', async () => {
    const t0 = Date.now();
    const log = (what: string) => console.log(`# partition-netns +${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);
    // Before: one ring, one user per adapter.
    const settle = Date.now() + 20_000;
    while (!(await oneRing())) {
      assert.ok(Date.now() < settle, 'the ring did not form before the cut');
      await sleep(500);
    }
    await Promise.all(adapters.map((_, i) => register(`pre${i}`, i, 'before')));
    log(`one ring of ${ringIds().size}; ${users.length} users registered; cutting the network in two`);

    // The cut: each side keeps its bootstrap and three adapters.
    await lay.net.partition(sides);
    const cutAt = Date.now();
    await sleep(15_000);
    // During: one more user per adapter, each named so that its side's bootstrap owns the name.
    const taken = new Set<string>();
    const names = adapters.map((a) => nameOwnedBy('mid', a.side, taken));
    const during = await Promise.all(adapters.map((_, i) => register(names[i], i, 'during')));
    log(`REGISTER answers during the cut, per adapter: ${during.map((t) => t.join(', ')).join(' | ')}`);
    // Each side drops the other only after suspicion (unanswered RPCs over a few periods): on a loaded machine
    // that can take longer than the first 15 s, so look again until shortly before the heal.
    const walkBoth = () => Promise.all([0, 1].map((b) => walkFrom(b).catch((e) => ({ ids: [], error: String(e) }))));
    let split = await walkBoth();
    while (split.some((x) => x.ids.length !== 4) && Date.now() < cutAt + CUT_MS - 5000) {
      await sleep(1000);
      split = await walkBoth();
    }
    log(`registered during the cut; ring sizes seen from each side: ${split.map((s) => s.ids.length).join(' / ')}`);
    // Each side is a working ring of its own: two rings, each with its bootstrap and three adapters.
    for (const s of split) assert.equal(s.ids.length, 4, `a ring of one side while cut: ${JSON.stringify(s)}`);
    // Each side serves what was registered on it during the cut.
    const sameSideDuring = (from: number, to: User) =>
      to.when === 'during' && adapters[from].side === adapters[to.at].side;
    let inside = await failingCalls('during', sameSideDuring);
    for (let i = 0; i < 5 && inside.length > 0; i++) {
      await sleep(1000);
      inside = await failingCalls('during', sameSideDuring);
    }
    assert.deepEqual(inside, [], 'users registered during the cut callable on their side');
    // Users registered before the cut whose records all sit on the other side cannot be reached while
    // it lasts (nothing on this side holds their pieces or location): shown, not asserted.
    const before = await failingCalls(
      'before',
      (from, to) => to.when === 'before' && adapters[from].side === adapters[to.at].side,
    );
    log(
      `during the cut: users registered during it callable on their side; users registered before it, ` +
        `on the same side, not callable: ${before.length} of ${adapters.length * 2} calls${before.length ? ` (${before.slice(0, 3).join('; ')})` : ''}`,
    );
    await sleep(Math.max(0, cutAt + CUT_MS - Date.now()));

    await lay.net.heal();
    const healAt = Date.now();
    log('healed');
    if (process.env.SECP2PSIP_TEST_LOGS)
      // The TCP state of the ring links of one host towards the other side, two seconds after the heal.
      sleep(2000)
        .then(() => lay.net.exec(lay.host('a2'), ['ss', '-tni', 'state', 'established']))
        .then((r) => {
          const dir = String(process.env.SECP2PSIP_TEST_LOGS);
          mkdirSync(dir, { recursive: true });
          writeFileSync(join(dir, 'h2-tcp-after-heal.txt'), r.stdout);
        })
        .catch(() => {});
    // After: one more user per adapter, registered as soon as the bootstraps take it.
    const registering = Promise.all(adapters.map((_, i) => register(`post${i}`, i, 'after', 40_000)));
    registering.then((t) => log(`REGISTER answers after the heal: ${t.map((x) => x.join(', ')).join(' | ')}`));

    let ringMs = -1;
    const ringWatch = (async () => {
      while (Date.now() - healAt < RING_WITHIN_MS + 10_000) {
        if (await oneRing()) {
          ringMs = Date.now() - healAt;
          return;
        }
        await sleep(250);
      }
    })();
    await registering;
    log(`registered after the heal (${users.length} users)`);

    let callableMs = -1;
    let rounds = 0;
    while (Date.now() - healAt < CALLABLE_WITHIN_MS) {
      rounds++;
      lastFailed = await failingCalls();
      if (lastFailed.length === 0) {
        callableMs = Date.now() - healAt;
        break;
      }
      await sleep(500);
    }
    await ringWatch;
    const calls = adapters.length * (users.length - 1);
    log(
      `heal -> one ring: ${ringMs < 0 ? 'not within the wait' : `${(ringMs / 1000).toFixed(1)} s`}; ` +
        `heal -> every user callable (${users.length} users x ${adapters.length} adapters, ${calls} calls a round, round ${rounds}): ` +
        `${callableMs < 0 ? 'not within the wait' : `${(callableMs / 1000).toFixed(1)} s`}`,
    );
    const merges = daemons.map((d) => (d.err().match(/merging rings/g) ?? []).length);
    log(`merge steps logged per daemon (boot0, boot1, a2..a7): ${merges.join(' ')}`);
    if (lastFailed?.length) {
      log(`still failing ${CALLABLE_WITHIN_MS / 1000} s after the heal: ${lastFailed?.join('; ')}`);
      // Where the failing callees' records are, and where they should be (owner and two successors).
      const names = [...new Set(lastFailed.map((f) => /-> (\S+)\(/.exec(f)?.[1]).filter((x) => x !== undefined))];
      await walkFrom(0).catch(() => {});
      const keys = names.flatMap((n) => [n, ...[1, 2, 3, 4, 5].map((i) => `${n}.${i}`)]);
      const at = (await agents[0].ask({ op: 'where', keys }).catch((e) => String(e))) as unknown;
      log(`records of the failing callees (holders / owner and successors): ${JSON.stringify(at)}`);
      log(
        `ring: ${[...ringIds()]
          .sort()
          .map((id) => id.slice(0, 8))
          .join(
            ' ',
          )}; boot0/1 ${boots.map((b) => b.ringId.slice(0, 8)).join(' ')}; adapters ${adapters.map((a) => `${a.ringId.slice(0, 8)}(side ${a.side})`).join(' ')}`,
      );
    }
    assert.ok(ringMs >= 0 && ringMs <= RING_WITHIN_MS, `one ring ${RING_WITHIN_MS / 1000} s after the heal`);
  });

  it('every user registered before, during or after the cut is callable from every adapter within 60 s of the heal', () => {
    assert.deepEqual(lastFailed, [], 'every user callable from every adapter');
  });
});
