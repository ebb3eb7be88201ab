/**
 * The shared registry on a real PostgreSQL (a private cluster for this file):
 * several registries on one database stand for several bootstraps. Exactly
 * one of concurrent claims of a name wins; quotas and rates are counted in
 * the database for all of them; pending publications are taken by one
 * sweeper at a time; a newer schema is refused; an outage is REGISTRY_UNAVAILABLE
 * and the pool recovers by itself.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PgRegistry } from '../../src/secp2psip/registry-pg.ts';
import { SCHEMA_VERSION } from '../../src/secp2psip/registry-pg-schema.ts';
import { checkSharedWitness, writeSharedWitness } from '../../src/secp2psip/registry-pg-witness.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { postgresMissing, TestPostgres } from '../support/postgres.ts';

const skip = postgresMissing();
const rnd = new SeededRandom(7);
const keys = () => ({ signKey: rnd.bytes(32), sealKey: rnd.bytes(32) });
const records = (tag: number) => ({ location: new Uint8Array([tag, 1]), pieces: [new Uint8Array([tag, 2])] });

describe('PostgreSQL registry', { skip, timeout: 120_000 }, () => {
  let pg: TestPostgres;
  let dbs = 0;
  const open: PgRegistry[] = [];
  /** A fresh database and `n` registries on it (one per "bootstrap"). */
  async function fresh(n: number): Promise<{ url: string; regs: PgRegistry[]; db: string }> {
    const db = `t${++dbs}`;
    const url = pg.createDatabase(db);
    const regs: PgRegistry[] = [];
    for (let i = 0; i < n; i++) regs.push(await PgRegistry.open(url, { timeoutMs: 1000 }));
    open.push(...regs);
    return { url, regs, db };
  }

  before(async () => {
    pg = await TestPostgres.start();
  });
  after(async () => {
    for (const r of open) await r.close();
    pg?.destroy();
  });

  it('binds first come, first served: exactly one of concurrent claims through three registries wins', async () => {
    const { regs, db } = await fresh(3);
    const names = Array.from({ length: 40 }, (_, i) => `race${i}`);
    const contenders = names.map(() => regs.map(() => keys()));
    const outcomes = await Promise.all(
      names.flatMap((name, i) =>
        regs.map((r, j) => r.claim(name, contenders[i][j], 1000 + j, undefined, undefined, records(j))),
      ),
    );
    for (const [i, name] of names.entries()) {
      const mine = outcomes.slice(i * 3, i * 3 + 3);
      const won = mine.filter((o) => o.outcome === 'created');
      assert.equal(won.length, 1, `${name}: ${mine.map((o) => o.outcome).join(',')}`);
      assert.equal(mine.filter((o) => o.outcome === 'taken').length, 2);
      const winner = mine.findIndex((o) => o.outcome === 'created');
      const stored = await regs[(winner + 1) % 3].get(name);
      assert.deepEqual(stored?.signKey, contenders[i][winner].signKey, `${name} holds the winner's key`);
      assert.equal(stored?.state, 'pending');
      // The losers saw the winner's entry.
      for (const o of mine) if (o.outcome === 'taken') assert.deepEqual(o.entry.signKey, stored?.signKey);
    }
    assert.equal(pg.psql(db, 'SELECT count(*) FROM registry_users'), '40\n');
    // The same keys again through another registry: confirmed, its location pending until marked.
    const k = contenders[0][outcomes.slice(0, 3).findIndex((o) => o.outcome === 'created')];
    const again = await regs[2].claim('race0', k, 5000, undefined, undefined, records(9));
    assert.equal(again.outcome, 'same');
    await regs[1].markPublished('race0', records(8).location, 5001);
    assert.equal((await regs[0].get('race0'))?.state, 'pending', 'another location was not the one published');
    await regs[1].markPublished('race0', records(9).location, 5002);
    assert.equal((await regs[0].get('race0'))?.state, undefined);
  });

  it('counts the per-adapter total and the per-minute rates in the database, for every bootstrap', async () => {
    const { regs } = await fresh(2);
    const nodeKey = rnd.bytes(32);
    const quota = { nodeKey, maxPerNode: 3 };
    const got = [];
    for (let i = 0; i < 5; i++) got.push((await regs[i % 2].claim(`q${i}`, keys(), 1, undefined, quota)).outcome);
    assert.deepEqual(got, ['created', 'created', 'created', 'refused', 'refused']);
    assert.equal(await regs[0].namesBoundBy(nodeKey), 3, 'refusals spent nothing');
    assert.equal(await regs[1].get('q3'), undefined);
    // Rates: a burst of 2 per minute for one adapter, whichever bootstrap it asks.
    const rate = { nodeKey: rnd.bytes(32), rates: { perMinute: 2, source: '10.0.0.1' } };
    const a = await regs[0].claim('r0', keys(), 1, undefined, rate);
    const b = await regs[1].claim('r1', keys(), 1, undefined, rate);
    const c = await regs[0].claim('r2', keys(), 1, undefined, rate);
    assert.deepEqual([a.outcome, b.outcome, c.outcome], ['created', 'created', 'refused']);
    assert.ok(c.outcome === 'refused' && c.code === 'USER_NAME_RATE', JSON.stringify(c));
    assert.match(c.reason, /retry after \d+ s/);
    // Per source address: another adapter key from the same host shares the address's bucket.
    const addr = { perAddressPerMinute: 1, source: '10.0.0.9' };
    assert.equal(
      (await regs[0].claim('s0', keys(), 1, undefined, { nodeKey: rnd.bytes(32), rates: addr })).outcome,
      'created',
    );
    assert.equal(
      (await regs[1].claim('s1', keys(), 1, undefined, { nodeKey: rnd.bytes(32), rates: addr })).outcome,
      'refused',
    );
    // Enrolment tokens made through one are spent once, through any.
    const [token] = await regs[0].createInvites(1, 1, 10_000);
    const inv = (name: string) =>
      regs[1].claim(name, keys(), 2, undefined, { nodeKey, requireInvite: true, invite: token });
    await regs[0].release('q0'); // room in the quota
    const quotaFree = { nodeKey: rnd.bytes(32), requireInvite: true, invite: token };
    assert.equal((await regs[1].claim('i0', keys(), 2, undefined, quotaFree)).outcome, 'created');
    const spent = await inv('i1');
    assert.ok(spent.outcome === 'refused' && /already used/.test(spent.reason), JSON.stringify(spent));
  });

  it('hands each pending publication to one sweeper at a time', async () => {
    const { regs } = await fresh(2);
    for (let i = 0; i < 10; i++) await regs[0].claim(`p${i}`, keys(), 100, undefined, undefined, records(i));
    const [x, y] = await Promise.all([regs[0].pending(1000, 2000, 6), regs[1].pending(1000, 2000, 6)]);
    const names = [...x, ...y].map((e) => e.name).sort();
    assert.equal(names.length, 10);
    assert.equal(new Set(names).size, 10, 'no name taken twice');
    // Taken means not due again until the grace has passed.
    assert.equal((await regs[1].pending(1000, 2100, 100)).length, 0);
    assert.equal((await regs[1].pending(2001, 2100, 100)).length, 10);
    for (const e of x) await regs[0].markPublished(e.name, e.location as Uint8Array, 3000);
    assert.equal((await regs[1].resealDue(3001, 4000, 100)).length, x.length);
  });

  it('refuses to start on a newer schema, with one line saying so', async () => {
    const { url, db, regs } = await fresh(1);
    await regs[0].close();
    pg.psql(db, `INSERT INTO registry_migrations (version, name) VALUES (${SCHEMA_VERSION + 1}, 'from the future')`);
    await assert.rejects(PgRegistry.open(url), (e: Error) => {
      assert.ok(isOverlayError(e, 'BAD_CONFIG'), String(e));
      assert.match(
        e.message,
        new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this program's ${SCHEMA_VERSION}`),
      );
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  });

  it('a database that holds no users while this bootstrap saw some is refused unless accepted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'secp2psip-witness-'));
    try {
      const a = await fresh(1);
      await a.regs[0].claim('w0', keys(), 1);
      await writeSharedWitness(dir, a.regs[0]);
      assert.equal(await checkSharedWitness(dir, a.regs[0], false), undefined);
      const b = await fresh(1);
      await assert.rejects(
        checkSharedWitness(dir, b.regs[0], false),
        /holds no users, but this bootstrap saw 1 registered users in another database/,
      );
      assert.deepEqual(await checkSharedWitness(dir, b.regs[0], true), { hadUsers: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers REGISTRY_UNAVAILABLE while the database is down and recovers by itself when it is back', async () => {
    const { regs } = await fresh(1);
    const k = keys();
    assert.equal((await regs[0].claim('before', k, 1)).outcome, 'created');
    pg.stop();
    try {
      await assert.rejects(regs[0].claim('during', keys(), 2), (e) => isOverlayError(e, 'REGISTRY_UNAVAILABLE'));
      await assert.rejects(regs[0].get('before'), (e) => isOverlayError(e, 'REGISTRY_UNAVAILABLE'));
    } finally {
      pg.restart();
    }
    assert.equal((await regs[0].claim('before', k, 3)).outcome, 'same');
    assert.equal((await regs[0].claim('during', keys(), 4)).outcome, 'created');
    assert.equal(await regs[0].count(), 2);
  });
});
