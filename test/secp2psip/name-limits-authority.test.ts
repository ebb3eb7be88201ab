/**
 * Limits on new names with several bootstraps (name-authority.ts): a name's
 * REGISTER is forwarded to its authority, and that bootstrap's limits apply,
 * counted against the adapter's node key and its address (not the
 * forwarding bootstrap's). Daemons in this process, over loopback TLS.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.ts';
import {
  type RunningAdapter,
  type RunningBootstrap,
  startAdapterDaemon,
  startBootstrapDaemon,
} from '../../src/secp2psip/daemon.ts';
import type { BootstrapInfo } from '../../src/secp2psip/messages.ts';
import { authorityFor } from '../../src/secp2psip/name-authority.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { freePort } from '../sip/e2e-helpers.ts';

describe('limits on new names apply at the name authority', { timeout: 120_000 }, () => {
  let base = '';
  const infos: BootstrapInfo[] = [];
  const boots: RunningBootstrap[] = [];
  const adapters: RunningAdapter[] = [];

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-names-authority-'));
    for (let i = 0; i < 2; i++) {
      const dir = join(base, `boot-${i}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      infos.push({ addr: `127.0.0.1:${await freePort()}`, key: Identity.loadOrCreate(join(dir, 'node')).bundle.sig });
    }
    boots.push(
      ...(await Promise.all(
        [0, 1].map((i) =>
          startBootstrapDaemon({
            host: '127.0.0.1',
            port: Number(infos[i].addr.split(':')[1]),
            dataDir: join(base, `boot-${i}`),
            k: 2,
            n: 3,
            peers: infos,
            stabilizeMs: 500,
            newNames: { perMinute: 2, perAddressPerMinute: 3 },
          }),
        ),
      )),
    );
    for (let i = 0; i < 2; i++)
      adapters.push(
        await startAdapterDaemon({
          sipHost: '127.0.0.1',
          sipPort: 0,
          bootstrap: infos[0],
          dataDir: join(base, `adapter-${i}`),
          stabilizeMs: 500,
        }),
      );
  });

  after(async () => {
    for (const a of adapters) await a.close().catch(() => {});
    for (const b of boots) await b.close().catch(() => {});
    rmSync(base, { recursive: true, force: true });
  });

  /** `count` fresh names whose authority is bootstrap `b`. */
  const owned = (() => {
    let j = 0;
    return (b: number, count: number): string[] => {
      const out: string[] = [];
      while (out.length < count) {
        const name = `auth${j++}`;
        if (Buffer.from(authorityFor(name, infos).key).equals(Buffer.from(infos[b].key))) out.push(name);
      }
      return out;
    };
  })();

  async function refusal(a: RunningAdapter, name: string): Promise<string> {
    try {
      await a.node.ensureUser(name);
      return 'bound';
    } catch (e) {
      assert.ok(isOverlayError(e), String(e));
      return e.code;
    }
  }

  it("names forwarded to their authority count there, per node key and per address; the forwarder's own count stays apart", async () => {
    const [A, B] = adapters;
    const aKey = A.node.endpoint.self.key;
    const [n1, n2, n3] = owned(1, 3);
    // Through bootstrap 0, forwarded to bootstrap 1: its per-minute rate (2) for A's node key.
    assert.equal(await refusal(A, n1), 'bound');
    assert.equal(await refusal(A, n2), 'bound');
    assert.equal(await refusal(A, n3), 'USER_NAME_RATE');
    assert.ok(boots[0].server.stats.forwarded >= 3);
    assert.equal(boots[1].server.registry.namesBoundBy(aKey), 2);
    assert.equal(boots[0].server.registry.namesBoundBy(aKey), 0);
    assert.equal(boots[1].server.stats.namesRefused, 1);
    // A name owned by bootstrap 0 is counted there, apart.
    const [m1] = owned(0, 1);
    assert.equal(await refusal(A, m1), 'bound');
    assert.equal(boots[0].server.registry.namesBoundBy(aKey), 1);
    // Another node key from the same address: bootstrap 1's per-address rate (3) has one name left.
    const [p1, p2] = owned(1, 2);
    assert.equal(await refusal(B, p1), 'bound');
    assert.equal(await refusal(B, p2), 'USER_NAME_RATE');
    // Re-registration of a bound name with its key is never limited (a restart registers users again).
    assert.equal(await refusal(A, n1), 'bound');
  });
});
