/**
 * `secp2psip registry migrate` copies a bootstrap's registry.sqlite into a
 * shared PostgreSQL registry: idempotent (a second run changes nothing),
 * conflicting names reported and left as they are. And the bootstrap's
 * `--registry` refuses, in one line, what it cannot use.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from '../../src/secp2psip/registry.ts';
import { PgRegistry } from '../../src/secp2psip/registry-pg.ts';
import { SCHEMA_VERSION } from '../../src/secp2psip/registry-pg-schema.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { runCli } from '../support/cli.ts';
import { postgresMissing, TestPostgres } from '../support/postgres.ts';

const skip = postgresMissing();
const rnd = new SeededRandom(3);
const keys = () => ({ signKey: rnd.bytes(32), sealKey: rnd.bytes(32) });

describe('registry migrate and bootstrap --registry', { skip, timeout: 120_000 }, () => {
  let pg: TestPostgres;
  let base = '';
  before(async () => {
    pg = await TestPostgres.start();
    base = mkdtempSync(join(tmpdir(), 'secp2psip-migrate-'));
  });
  after(() => {
    pg?.destroy();
    rmSync(base, { recursive: true, force: true });
  });

  it('copies names, keys, pieces, counts and tokens; a second run changes nothing; conflicts are reported', async () => {
    const url = pg.createDatabase('migrated');
    const file = join(base, 'a.sqlite');
    const reg = new Registry(file);
    const nodeKey = rnd.bytes(32);
    const alice = keys();
    const bob = keys();
    const pieces = [new Uint8Array([1, 9]), new Uint8Array([2, 9])];
    reg.claim('alice', alice, 1000, 'ab12', { nodeKey }, { location: new Uint8Array([7]), pieces });
    reg.markPublished('alice', new Uint8Array([7]), 1001);
    reg.claim('bob', bob, 2000, undefined, { nodeKey });
    reg.createInvites(2, 1, 99_999);
    reg.close();

    const first = await runCli(['registry', 'migrate', '--from', file, '--to', url]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      /^copied 2 names \(0 already there with the same key, 0 conflicts\), 1 adapter counts, 2 enrolment tokens$/m,
    );
    const dump = () =>
      pg.psql(
        'migrated',
        `SELECT string_agg(name || ':' || encode(sign_key, 'hex') || ':' || coalesce(encode(pieces, 'hex'), '-'), ',' ORDER BY name)
         FROM registry_users`,
      ) +
      pg.psql('migrated', 'SELECT names FROM registry_node_names') +
      pg.psql('migrated', 'SELECT count(*) FROM registry_invites');
    const before = dump();
    const second = await runCli(['registry', 'migrate', '--from', file, '--to', url]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(
      second.stdout,
      /^copied 0 names \(2 already there with the same key, 0 conflicts\), 0 adapter counts, 0 enrolment tokens$/m,
    );
    assert.equal(dump(), before, 'the second run changed nothing');

    const shared = await PgRegistry.open(url);
    try {
      const a = await shared.get('alice');
      assert.deepEqual(a?.signKey, alice.signKey);
      assert.deepEqual(a?.pieces, pieces);
      assert.deepEqual(a?.location, new Uint8Array([7]));
      assert.equal(a?.registeredAt, 1000);
      assert.equal(a?.certFingerprint, 'ab12');
      assert.equal(await shared.namesBoundBy(nodeKey), 2);
      // Another bootstrap's file with bob bound to another key: reported, left as it is.
      const other = join(base, 'b.sqlite');
      const reg2 = new Registry(other);
      reg2.claim('bob', keys(), 500);
      reg2.claim('carol', keys(), 600);
      reg2.close();
      const third = await runCli(['registry', 'migrate', '--from', other, '--to', url]);
      assert.equal(third.code, 1);
      assert.match(third.stdout, /^copied 1 names \(0 already there with the same key, 1 conflicts\)/m);
      assert.match(third.stdout, /^conflict bob: already registered in the database with another key/m);
      assert.deepEqual((await shared.get('bob'))?.signKey, bob.signKey, 'first come, first served');
      assert.ok(await shared.get('carol'));
      // --release works on the shared database without any bootstrap's data directory.
      const freed = await runCli(['bootstrap', '--release', 'carol', '--registry', url]);
      assert.equal(freed.code, 0, freed.stderr);
      assert.equal(freed.stdout, 'released carol\n');
      assert.equal(await shared.get('carol'), undefined);
      // --invite too: tokens made in the shared database, spendable through any bootstrap.
      const inv = await runCli(['bootstrap', '--invite', '--count', '2', '--for', 'dora', '--registry', url]);
      assert.equal(inv.code, 0, inv.stderr);
      const tokens = inv.stdout.trim().split('\n');
      assert.equal(tokens.length, 2);
      const spend = await shared.claim('dora', keys(), 5, undefined, {
        nodeKey: rnd.bytes(32),
        requireInvite: true,
        invite: tokens[1],
      });
      assert.equal(spend.outcome, 'created');
    } finally {
      await shared.close();
    }
  });

  it('says in one line what is wrong with --registry, --from or the database', async () => {
    const dir = join(base, 'boot');
    mkdirSync(dir);
    const bad = await runCli(['bootstrap', '--listen', '127.0.0.1:0', '--data', dir, '--registry', 'mysql://x']);
    assert.equal(bad.code, 2);
    assert.equal(
      bad.stderr.trim(),
      "secp2psip bootstrap: bad command-line argument: --registry must be a postgres:// connection string, got 'mysql://x'",
    );
    const url = pg.createDatabase('future');
    pg.psql('future', 'CREATE TABLE registry_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)');
    pg.psql('future', `INSERT INTO registry_migrations VALUES (${SCHEMA_VERSION + 5}, 'newer')`);
    const newer = await runCli(['bootstrap', '--listen', '127.0.0.1:0', '--data', dir, '--registry', url], {
      env: { SECP2PSIP_LOG: 'silent' },
    });
    assert.equal(newer.code, 2, newer.stderr);
    assert.equal(newer.stderr.trim().split('\n').length, 1, newer.stderr);
    assert.match(newer.stderr, /schema version \d+, newer than this program's \d+: upgrade secp2psip/);
    const down = await runCli([
      'registry',
      'migrate',
      '--from',
      join(base, 'a.sqlite'),
      '--to',
      'postgres://postgres@127.0.0.1:1/x',
    ]);
    assert.equal(down.code, 1);
    assert.match(down.stderr.trim(), /^secp2psip registry: .*cannot reach postgres:\/\/postgres@127\.0\.0\.1:1\/x/);
    const missing = await runCli(['registry', 'migrate', '--from', join(base, 'none.sqlite'), '--to', url]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /none\.sqlite: no such registry file/);
    const released = await runCli(['bootstrap', '--release', 'nobody', '--registry', url]);
    assert.notEqual(released.code, 0);
  });
});
