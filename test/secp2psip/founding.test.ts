import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.ts';
import { type RunningBootstrap, startBootstrapDaemon } from '../../src/secp2psip/daemon.ts';
import type { BootstrapInfo } from '../../src/secp2psip/messages.ts';
import { freePort } from '../sip/e2e-helpers.ts';

/**
 * Who founds the ring when no member answers (daemon.ts foundingRank): the
 * bootstraps in order of their keys. Started together they form one ring
 * (test/secp2psip/multi-bootstrap.test.ts); here the first in that order is
 * down, so the second founds, but only after waiting one step for it.
 */
describe('bootstrap founding order', { timeout: 60_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'secp2psip-founding-'));
  const running: RunningBootstrap[] = [];
  after(async () => {
    for (const b of running) await b.close().catch(() => {});
    rmSync(base, { recursive: true, force: true });
  });

  it('with the first bootstrap down, the second founds the ring after waiting for it, and the first then joins', async () => {
    const infos: (BootstrapInfo & { dir: string })[] = [];
    for (let i = 0; i < 2; i++) {
      const dir = join(base, `boot-${i}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const id = Identity.loadOrCreate(join(dir, 'node'));
      infos.push({ addr: `127.0.0.1:${await freePort()}`, key: id.bundle.sig, dir });
    }
    infos.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
    const peers = infos.map(({ addr, key }) => ({ addr, key }));
    const start = (i: number) =>
      startBootstrapDaemon({
        host: '127.0.0.1',
        port: Number(infos[i].addr.split(':')[1]),
        dataDir: infos[i].dir,
        k: 2,
        n: 3,
        peers,
        stabilizeMs: 500,
      });

    const t0 = Date.now();
    const second = await start(1);
    running.push(second);
    const waited = Date.now() - t0;
    assert.ok(waited >= 5000, `the second in founding order waited ${waited} ms before founding`);
    assert.equal(second.server.ring.successor.id, second.server.ring.id, 'a ring of its own');

    const first = await start(0);
    running.push(first);
    assert.ok(Date.now() - t0 - waited < 5000, 'the first founds or joins without waiting');
    for (const b of [first, second]) {
      const other = b === first ? second : first;
      const end = Date.now() + 10_000;
      while (b.server.ring.successor.id !== other.server.ring.id && Date.now() < end)
        await new Promise((r) => setTimeout(r, 50));
      assert.equal(b.server.ring.successor.id, other.server.ring.id, 'one ring of both');
    }
  });
});
