/**
 * A shared registry on a primary and a streaming standby, named together in
 * one multi-host connection string (`target_session_attrs=read-write`): the
 * registry writes to the primary although the standby is listed first; when
 * the primary dies, registrations are "unavailable" until the standby is
 * promoted, then the same registry (no restart) writes there, with every name
 * bound before still bound to its key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PgRegistry } from '../../src/secp2psip/registry-pg.ts';
import { splitHosts } from '../../src/secp2psip/registry-pg-pool.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { postgresMissing, TestPostgres } from '../support/postgres.ts';

const skip = postgresMissing();
const rnd = new SeededRandom(11);
const keys = () => ({ signKey: rnd.bytes(32), sealKey: rnd.bytes(32) });

describe('multi-host connection strings', () => {
  it('split into one string per server, without target_session_attrs', () => {
    assert.deepEqual(splitHosts('postgres://u:p@a:1,b:2/db?target_session_attrs=read-write&sslmode=disable'), [
      'postgres://u:p@a:1/db?sslmode=disable',
      'postgres://u:p@b:2/db?sslmode=disable',
    ]);
    assert.deepEqual(splitHosts('postgresql://h/db'), ['postgresql://h/db']);
  });
});

describe('a shared registry following a promoted standby', { skip, timeout: 180_000 }, () => {
  let primary: TestPostgres;
  let standby: TestPostgres;
  before(async () => {
    primary = await TestPostgres.start({ durable: true });
    primary.createDatabase('ha');
    standby = await TestPostgres.replicaOf(primary);
  });
  after(() => {
    standby?.destroy();
    primary?.destroy();
  });

  it('writes to the primary, then to the promoted standby, without a restart and without losing a name', async () => {
    const url = `postgres://postgres@127.0.0.1:${standby.port},127.0.0.1:${primary.port}/ha?target_session_attrs=read-write`;
    const reg = await PgRegistry.open(url, { timeoutMs: 1000 });
    try {
      const alice = keys();
      assert.equal((await reg.claim('alice', alice, 1)).outcome, 'created');
      // The standby has it once streamed (the table itself may not have reached it yet).
      const streamed = () => {
        try {
          return standby.psql('ha', 'SELECT count(*) FROM registry_users').trim() === '1';
        } catch {
          return false;
        }
      };
      for (let i = 0; !streamed(); i++) {
        assert.ok(i < 100, 'the standby never received the name');
        await new Promise((r) => setTimeout(r, 100));
      }
      primary.kill();
      await assert.rejects(reg.claim('bob', keys(), 2), (e) => isOverlayError(e, 'REGISTRY_UNAVAILABLE'));
      standby.promote();
      let out: Awaited<ReturnType<PgRegistry['claim']>> | undefined;
      for (let i = 0; !out; i++) {
        try {
          out = await reg.claim('bob', keys(), 3);
        } catch (e) {
          assert.ok(isOverlayError(e, 'REGISTRY_UNAVAILABLE'), String(e));
          assert.ok(i < 60, 'the registry never moved to the promoted standby');
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      assert.equal(out.outcome, 'created');
      assert.equal((await reg.claim('alice', alice, 4)).outcome, 'same');
      assert.equal((await reg.claim('alice', keys(), 5)).outcome, 'taken');
      assert.equal(standby.psql('ha', 'SELECT count(*) FROM registry_users').trim(), '2');
    } finally {
      await reg.close();
    }
  });
});
