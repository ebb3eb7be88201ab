/**
 * A registration's record set and the claim's durability, at a bootstrap on
 * the system clock (its own registry file, the claim's fdatasync on the
 * thread pool), in-process daemons on loopback TLS: the batch put's lookups
 * start while the sync runs, no STORE leaves before it has completed, and a
 * sync that fails stores nothing and refuses the registration.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { METHOD } from '../../src/dht/chord/messages.ts';
import { LocalOverlay, sipPeer } from '../../src/harness/local-overlay.ts';
import { SipElement } from '../../src/sip/element.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import { UserAgent } from '../../src/sip/user-agent.ts';
import { SystemClock } from '../../src/util/clock.ts';

describe('a registration stores its records only once its claim is durable', { timeout: 120_000 }, () => {
  let dir = '';
  let overlay: LocalOverlay;
  /** What the bootstrap's ring node did, in order: a lookup batch started, a STORE sent (with its keys). */
  const events: Array<{ what: 'lookup' | 'store'; keys: string[] }> = [];
  /** The registry's sync, as the test lets it end. */
  let syncs: Array<{ done: () => void; fail: (e: Error) => void }> = [];
  const elements: SipElement[] = [];

  /** A phone named `user` REGISTERs at adapter `i`: its final status (undefined: no answer). */
  async function register(user: string, i: number): Promise<number | undefined> {
    const transport = await TransportStack.listen({ host: '127.0.0.1', port: 0 });
    const element = new SipElement({ transport, clock: new SystemClock() });
    elements.push(element);
    const phone = new UserAgent({ element }, { user, domain: '127.0.0.1' });
    return (await phone.register(sipPeer(overlay.adapters[i])).catch(() => undefined))?.status;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'secp2psip-reg-gate-'));
    overlay = await LocalOverlay.start({ adapters: 2, dataDir: dir, k: 2, n: 3 });
    const server = overlay.boot.server;
    const ring = server.ring;
    const lookupMany = ring.lookupMany.bind(ring);
    ring.lookupMany = (targets, ...rest) => {
      events.push({ what: 'lookup', keys: [...targets] });
      return lookupMany(targets, ...rest);
    };
    const call = ring.call.bind(ring);
    ring.call = (to, method, payload) => {
      if (method === METHOD.STORE)
        events.push({
          what: 'store',
          keys: ((payload as { records?: Array<{ key: string }> }).records ?? []).map((r) => r.key),
        });
      return call(to, method, payload);
    };
    const sync = server.registry.sync.bind(server.registry);
    server.registry.sync = () =>
      new Promise<void>((done, fail) => {
        syncs.push({ done: () => sync().then(done, fail), fail });
      });
  });

  after(async () => {
    for (const e of elements) await e.close();
    await overlay?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const waitFor = async (cond: () => boolean, what: string) => {
    const end = Date.now() + 10_000;
    while (!cond()) {
      assert.ok(Date.now() < end, `timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const storesOf = (name: string) =>
    events.filter((e) => e.what === 'store' && e.keys.some((k) => k === name || k.startsWith(`${name}.`)));

  it('looks the holders up while the claim is synced, and sends the STOREs after', async () => {
    events.length = 0;
    syncs = [];
    const reg = register('ivan', 0);
    await waitFor(() => syncs.length > 0 && events.some((e) => e.what === 'lookup'), 'the lookups during the sync');
    // Give a STORE every chance to leave early: the lookups have had time to come back.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(storesOf('ivan').length, 0, 'no STORE while the claim is not durable');
    for (const s of syncs.splice(0)) s.done();
    assert.equal(await reg, 200);
    assert.ok(storesOf('ivan').length > 0, 'the records were stored once it was');
    const firstLookup = events.findIndex((e) => e.what === 'lookup');
    const firstStore = events.findIndex((e) => e.what === 'store');
    assert.ok(firstLookup >= 0 && firstLookup < firstStore);
  });

  it('a sync that fails refuses the registration and stores nothing', async () => {
    events.length = 0;
    syncs = [];
    const failer = setInterval(() => {
      for (const s of syncs.splice(0)) s.fail(new Error('disk gone'));
    }, 2);
    try {
      const status = await register('judy', 1);
      assert.ok(status !== 200, `answered ${status}`);
      // Long enough for anything left behind (the put's retries, the maintenance's re-put) to send a STORE.
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      clearInterval(failer);
    }
    assert.ok(
      events.some((e) => e.what === 'lookup'),
      'the lookups had started',
    );
    assert.equal(storesOf('judy').length, 0, 'no STORE of its records');
    assert.ok(!overlay.boot.server.ring.maintenance.published.has('judy'), 'nothing left to republish');
  });
});
