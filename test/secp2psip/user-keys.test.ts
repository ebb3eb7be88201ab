import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FileUserKeys, MemoryUserKeys, type UserKeyStore } from '../../src/secp2psip/user-keys.ts';

describe("where an adapter keeps its users' keys", () => {
  it('in files: created once with mode 0600, the same key after a restart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'user-keys-'));
    try {
      const users = join(dir, 'users');
      const first = new FileUserKeys(users).identity('alice');
      assert.equal(statSync(join(users, 'alice.pem')).mode & 0o777, 0o600);
      const again = new FileUserKeys(users).identity('alice');
      assert.ok(Buffer.from(again.bundle.sig).equals(Buffer.from(first.bundle.sig)));
      assert.ok(!Buffer.from(new FileUserKeys(users).identity('bob').bundle.sig).equals(Buffer.from(first.bundle.sig)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in files: a certificate chain from <name>.crt, none without one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'user-keys-'));
    try {
      const keys = new FileUserKeys(dir);
      assert.equal(keys.certChain('alice'), undefined);
      const der = [Uint8Array.from([0x30, 1, 2]), Uint8Array.from([0x30, 3, 4, 5])];
      const pem = der
        .map((d) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(d).toString('base64')}\n-----END CERTIFICATE-----\n`)
        .join('');
      writeFileSync(join(dir, 'alice.crt'), pem);
      assert.deepEqual(keys.certChain('alice'), der);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in memory: a new key on every registration and no certificate', () => {
    const keys: UserKeyStore = new MemoryUserKeys();
    const a = keys.identity('alice');
    const b = keys.identity('alice');
    assert.ok(!Buffer.from(a.bundle.sig).equals(Buffer.from(b.bundle.sig)));
    assert.equal(keys.certChain('alice'), undefined);
  });
});
