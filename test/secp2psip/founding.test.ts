import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.ts';
import { MemoryNetwork } from '../../src/rpc/memory-network.ts';
import type { BootstrapInfo } from '../../src/secp2psip/messages.ts';
import { Registry } from '../../src/secp2psip/registry.ts';
import { FOUNDING_STEP_MS } from '../../src/secp2psip/ring-join.ts';
import { type BootstrapRole, startBootstrapRole } from '../../src/secp2psip/roles.ts';
import { SimClock } from '../../src/util/clock.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { placeCall } from '../../src/secp2psip/caller.ts';
import { authorityFor } from '../../src/secp2psip/name-authority.ts';
import { bindPhone, phoneInvite, SecTestnet } from './testnet.ts';

/**
 * Who founds the ring when no member answers (ring-join.ts foundingRank): the
 * bootstraps in order of their keys. The same assembly as the daemons
 * (roles.ts) on the in-memory network and the simulated clock, so the waits
 * of the founding order take simulated seconds, not real ones.
 */
class Bootstraps {
  readonly clock = new SimClock();
  readonly random: SeededRandom;
  readonly net: MemoryNetwork;
  readonly ids: Identity[] = [];
  readonly info: BootstrapInfo[] = [];
  readonly registries: Registry[] = [];
  readonly running: (BootstrapRole | undefined)[] = [];

  constructor(count: number, seed: number) {
    this.random = new SeededRandom(seed);
    this.net = new MemoryNetwork(
      { clock: this.clock, random: this.random.fork() },
      { latencyMs: 1, timeoutMs: 2000, copy: 'clone' },
    );
    const ids = Array.from({ length: count }, () => Identity.generate()).sort((a, b) =>
      Buffer.compare(Buffer.from(a.bundle.sig), Buffer.from(b.bundle.sig)),
    );
    ids.forEach((id, i) => {
      this.ids.push(id);
      this.info.push({ addr: `boot-${i}`, key: id.bundle.sig });
      this.registries.push(new Registry(':memory:'));
    });
  }

  /** Start bootstrap i (in founding order: 0 first) with the whole set as its peers. */
  start(i: number): Promise<BootstrapRole> {
    return startBootstrapRole(
      {
        identity: this.ids[i],
        registry: this.registries[i],
        clock: this.clock,
        random: this.random,
        listen: async (self) => {
          this.net.revive(this.info[i].addr);
          return this.net.endpoint({ ...self, addr: this.info[i].addr, key: this.ids[i].bundle.sig });
        },
      },
      { k: 2, n: 3, peers: this.info, stabilizeMs: 500 },
    ).then((r) => {
      this.running[i] = r;
      return r;
    });
  }

  /** A crash: no leave, off the network; its registry (and so its ring id) stays. */
  async crash(i: number): Promise<void> {
    const r = this.running[i];
    if (!r) return;
    r.ring.stop();
    this.net.kill(this.info[i].addr);
    await r.endpoint.close();
    this.running[i] = undefined;
  }

  /** Every running member's successor is the next running member in id order. */
  oneRing(): boolean {
    const live = this.running.filter((r): r is BootstrapRole => r !== undefined);
    const ids = live.map((r) => r.ring.id).sort();
    return live.every((r) => r.ring.successor.id === ids[(ids.indexOf(r.ring.id) + 1) % ids.length]);
  }

  /** Run simulated time until one ring forms (false if not within `limitMs`). */
  async untilOneRing(limitMs = 20_000): Promise<boolean> {
    for (let t = 0; t < limitMs; t += 100) {
      if (this.oneRing()) return true;
      await this.net.run(100);
    }
    return this.oneRing();
  }

  close(): void {
    for (const r of this.running) r?.ring.stop();
    for (const g of this.registries) g.close();
  }
}

describe('bootstrap founding order', () => {
  it('with the first bootstrap down, the second founds the ring after waiting for it, and the first then joins', async () => {
    const b = new Bootstraps(2, 7);
    try {
      const t0 = b.clock.now();
      const second = await b.net.settle(b.start(1), 60_000);
      const waited = b.clock.now() - t0;
      assert.ok(waited >= FOUNDING_STEP_MS, `the second in founding order waited ${waited} ms before founding`);
      assert.ok(waited < FOUNDING_STEP_MS + 3000, `and not much longer (${waited} ms)`);
      assert.equal(second.joined, 'founded');
      assert.equal(second.ring.successor.id, second.ring.id, 'a ring of its own');

      const t1 = b.clock.now();
      const first = await b.net.settle(b.start(0), 60_000);
      assert.ok(b.clock.now() - t1 < FOUNDING_STEP_MS, 'the first founds or joins without waiting');
      assert.equal(first.joined, 'joined');
      assert.ok(await b.untilOneRing(10_000), 'one ring of both');
    } finally {
      b.close();
    }
  });

  it('bootstraps started at the same moment form one ring, founded by the first in order', async () => {
    const b = new Bootstraps(3, 11);
    try {
      const all = await b.net.settle(Promise.all([2, 0, 1].map((i) => b.start(i))), 60_000);
      assert.deepEqual(
        all.map((r) => r.joined),
        ['joined', 'founded', 'joined'],
      );
      assert.ok(await b.untilOneRing(), 'one ring of three');
    } finally {
      b.close();
    }
  });

  it('a bootstrap restarted after a crash takes up its listed place again, under the same ring id', async () => {
    const b = new Bootstraps(3, 13);
    try {
      await b.net.settle(Promise.all([0, 1, 2].map((i) => b.start(i))), 60_000);
      assert.ok(await b.untilOneRing());
      const id = b.running[1]?.ring.id;
      await b.crash(1);
      const again = await b.net.settle(b.start(1), 60_000);
      assert.equal(again.ring.id, id, 'the ring id comes from its registry');
      assert.ok(again.joined === 'rejoined' || again.joined === 'joined', again.joined);
      assert.ok(await b.untilOneRing(), 'one ring of three again');
    } finally {
      b.close();
    }
  });

  it('with every other bootstrap down, the last in order founds after its whole wait', async () => {
    const b = new Bootstraps(3, 17);
    try {
      const t0 = b.clock.now();
      const last = await b.net.settle(b.start(2), 60_000);
      assert.equal(last.joined, 'founded');
      assert.ok(b.clock.now() - t0 >= 2 * FOUNDING_STEP_MS, `waited ${b.clock.now() - t0} ms`);
    } finally {
      b.close();
    }
  });
});

describe('bootstraps restarted (simulated time)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'secp2psip-founding-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('every bootstrap crashed at once comes back at its place through the adapters it knows', async () => {
    const t = await SecTestnet.create(4, {
      k: 2,
      n: 3,
      bootstraps: 3,
      seed: 9,
      registryPath: (i) => join(dir, `boot-${i}.sqlite`),
    });
    try {
      const [A, B, C] = t.adapters;
      const alice = await t.settle(A.ensureUser('alice'));
      await t.settle(B.ensureUser('bob'));
      // Every bootstrap owns a registered name, so each knows adapters to come back through (a bootstrap
      // with no users knows only its peers: with all of them down it would found a ring of its own).
      for (const [i, b] of t.info.entries()) {
        let name = `user${i}`;
        for (let j = 0; authorityFor(name, t.info) !== b; j++) name = `user${i}x${j}`;
        await t.settle(C.ensureUser(name));
      }
      const ids = t.bootstraps.map((b) => b.ring.id);
      for (let i = 0; i < 3; i++) await t.stopBootstrap(i);
      // The first finds no peer bootstrap up, only its users' adapters, whose ring still lists it.
      for (let i = 0; i < 3; i++) await t.startBootstrap(i);
      assert.deepEqual(
        t.bootstraps.map((b) => b.ring.id),
        ids,
        'each at its old place',
      );
      const rings = [...t.bootstraps, ...t.adapters].map((x) => x.ring);
      const sorted = rings.map((r) => r.id).sort();
      const oneRing = () => rings.every((r) => r.successor.id === sorted[(sorted.indexOf(r.id) + 1) % sorted.length]);
      for (let ms = 0; ms < 30_000 && !oneRing(); ms += 500) await t.run(500);
      assert.ok(
        oneRing(),
        `one ring: ${rings.map((r) => `${sorted.indexOf(r.id)}->${sorted.indexOf(r.successor.id)}`).join(' ')}`,
      );
      const carol = await t.settle(t.adapters[2].ensureUser('carol'));
      assert.equal(carol.name, 'carol');
      bindPhone(B, 'bob', 'sip:bob@10.0.0.2:5080');
      const out = await t.settle(placeCall(A.caller, phoneInvite('alice', 'bob'), alice, 'bob'));
      assert.ok(out.ok, out.ok ? '' : out.reason);
    } finally {
      t.close();
    }
  });
});
