/**
 * A burst of REGISTERs for new names, as a crowd of phones (or every phone
 * re-registering after an outage) sends it, with the real daemons: one
 * bootstrap and three adapters as processes. The burst once made the
 * bootstrap fall out of the ring for good (busy nodes answered late and
 * were dropped), while new users still got 200 and calls to them 404. Now:
 * every REGISTER gets 200 or 503 with Retry-After (phones come back later),
 * the ring stays or becomes whole again, and every user registered during
 * and after the burst can be called from every adapter.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../sip/e2e-helpers.ts';
import { type BurstAnswer, SipBurst } from '../support/sip-burst.ts';
import { type AdapterProc, type BootstrapProc, startAdapterProc, startBootstrapProc } from './procs.ts';

const BURST = Number(process.env.SECP2PSIP_BURST ?? 1500);

describe(`a burst of ${BURST} new-name REGISTERs at one adapter`, { timeout: 600_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  const adapters: AdapterProc[] = [];
  const clients: SipBurst[] = [];

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-burst-'));
    // Every phone here is legitimate: the limits on new names (tested in name-limits.test.ts) are lifted.
    const noLimits = ['--new-names-per-minute', '0', '--new-names-per-address', '0', '--new-names-per-adapter', '0'];
    boot = await startBootstrapProc(join(base, 'boot'), `127.0.0.1:${await freePort()}`, noLimits);
    for (const name of ['A', 'B', 'C'])
      adapters.push(
        await startAdapterProc(boot.spec, join(base, name), '127.0.0.1:0', ['--new-names-per-minute', '0']),
      );
  });

  after(async () => {
    for (const c of clients) c.close();
    for (const p of [...adapters, boot]) await p?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  async function client(dest: string): Promise<SipBurst> {
    const c = await SipBurst.open(dest);
    clients.push(c);
    return c;
  }

  /**
   * Every name as its own phone: sent at once (the burst), and sent again after the Retry-After of
   * each 503 (or 1 s without an answer) until it gets 200 or `limitMs` passes.
   */
  async function registerAll(c: SipBurst, names: string[], host: string, limitMs: number) {
    const first = new Map<number | 'none', number>();
    const deadline = Date.now() + limitMs;
    let sends = 0;
    const one = async (u: string): Promise<boolean> => {
      for (let round = 0; Date.now() < deadline; round++) {
        sends++;
        const a: BurstAnswer | null = await c.send({ method: 'REGISTER', uri: `sip:${host}`, from: u }, 30_000);
        if (round === 0) first.set(a ? a.status : 'none', (first.get(a ? a.status : 'none') ?? 0) + 1);
        if (a?.status === 200) return true;
        assert.ok(a === null || a.status === 503, `REGISTER ${u}: ${a?.status} ${a?.reason}`);
        if (a?.status === 503) assert.ok(a.retryAfter !== undefined, '503 carries Retry-After');
        await new Promise((r) => setTimeout(r, (a?.retryAfter ?? 1) * 1000));
      }
      return false;
    };
    const ok = await Promise.all(names.map(one));
    return { left: names.filter((_, i) => !ok[i]), sends, firstRound: Object.fromEntries(first) };
  }

  /** Every name gets a 302 at every adapter (checked again every 2 s), or the names that did not after `limitMs`. */
  async function callableEverywhere(names: string[], limitMs: number): Promise<{ ms: number; missing: string[] }> {
    const started = Date.now();
    let missing = names;
    for (;;) {
      const still: string[] = [];
      for (const [i, a] of adapters.entries()) {
        const c = await client(a.sip);
        const caller = `prober${i}`;
        const reg = await c.send({ method: 'REGISTER', uri: `sip:${a.sip}`, from: caller });
        assert.equal(reg?.status, 200, `prober at adapter ${i}`);
        const batch = 200;
        for (let j = 0; j < missing.length; j += batch) {
          const part = missing.slice(j, j + batch);
          const got = await Promise.all(
            part.map((u) => c.send({ method: 'INVITE', uri: `sip:${u}@${a.sip}`, from: caller }, 15_000)),
          );
          got.forEach((g, k) => {
            if (g?.status !== 302 && !still.includes(part[k])) still.push(part[k]);
          });
        }
      }
      missing = still;
      const ms = Date.now() - started;
      if (missing.length === 0 || ms > limitMs) return { ms, missing };
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  it('every REGISTER ends in 200 (503 with Retry-After meanwhile), and every user is callable from every adapter within 30 s', async () => {
    const A = adapters[0];
    const c = await client(A.sip);
    const names = Array.from({ length: BURST }, (_, i) => `burst${i}`);
    const t0 = Date.now();
    const reg = await registerAll(c, names, A.sip, 240_000);
    const regMs = Date.now() - t0;
    assert.deepEqual(reg.left, [], `names never registered: ${reg.left.length}`);
    // Users registered after the burst, at the other adapters.
    const later = ['after0', 'after1'];
    const cb = await client(adapters[1].sip);
    assert.deepEqual((await registerAll(cb, later, adapters[1].sip, 30_000)).left, []);
    const calls = await callableEverywhere([...names, ...later], 30_000);
    console.log(
      `burst ${BURST}: first answers ${JSON.stringify(reg.firstRound)}, all registered in ${regMs} ms (${reg.sends} REGISTERs sent); every user callable from every adapter ${calls.ms} ms later`,
    );
    assert.deepEqual(calls.missing.slice(0, 10), [], `${calls.missing.length} users not callable everywhere`);
  });
});
