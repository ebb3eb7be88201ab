/**
 * `secp2psip bootstrap --release <name>`: the operator frees a name whose key
 * was lost, so its user can register a new key; nothing else in the registry
 * changes, and bad input is a one-line error.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Registry } from '../../src/secp2psip/registry.ts';

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/secp2psip.mjs', 'bootstrap', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bootstrap --release', () => {
  const dir = mkdtempSync(join(tmpdir(), 'release-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'registry.sqlite');
  const reg = new Registry(path);
  const keys = (b: number) => ({ signKey: new Uint8Array(32).fill(b), sealKey: new Uint8Array(32).fill(b + 1) });
  reg.claim('carl', keys(1), 1000);
  reg.claim('dana', keys(3), 1000);
  reg.close();

  it('frees the name, keeps the others, and the name takes a new key with a later time', () => {
    const r = cli(['--data', dir, '--release', 'carl']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'released carl\n');
    const after = new Registry(path);
    try {
      assert.equal(after.get('carl'), undefined);
      assert.ok(after.get('dana'));
      const c = after.claim('carl', keys(5), 2000);
      assert.equal(c.outcome, 'created');
      assert.equal(c.entry.registeredAt, 2000);
    } finally {
      after.close();
    }
  });

  it('an unknown name, a bad name or a directory without a registry: one line, non-zero, nothing changed', () => {
    const unknown = cli(['--data', dir, '--release', 'nobody']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^secp2psip bootstrap: unknown user: 'nobody' is not registered/);
    const bad = cli(['--data', dir, '--release', 'no such name']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--release: 'no such name' is not a user name/);
    const empty = cli(['--data', join(dir, 'elsewhere'), '--release', 'dana']);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /--data: no registry in/);
    for (const r of [unknown, bad, empty]) assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    const still = new Registry(path);
    assert.ok(still.get('dana'));
    still.close();
  });
});
