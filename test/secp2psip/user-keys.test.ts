import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.ts';
import { FileUserKeys, MemoryUserKeys, type UserKeyStore } from '../../src/secp2psip/user-keys.ts';

describe("where an adapter keeps its users' keys", () => {
  it('in files: written with mode 0600 beside the registration, the same key after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'user-keys-'));
    try {
      const users = join(dir, 'users');
      const keys = new FileUserKeys(users);
      assert.equal(statSync(join(users, '.key-secret')).mode & 0o777, 0o600);
      const first = keys.identity('alice');
      assert.ok(keys.has('alice'));
      await keys.flush();
      assert.equal(statSync(join(users, 'alice.pem')).mode & 0o777, 0o600);
      const again = new FileUserKeys(users).identity('alice');
      assert.ok(Buffer.from(again.bundle.sig).equals(Buffer.from(first.bundle.sig)));
      assert.ok(Buffer.from(again.bundle.kem).equals(Buffer.from(first.bundle.kem)));
      assert.ok(!Buffer.from(new FileUserKeys(users).identity('bob').bundle.sig).equals(Buffer.from(first.bundle.sig)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in files: a key file lost in a crash comes back the same, from the directory secret alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'user-keys-'));
    try {
      const keys = new FileUserKeys(dir);
      const first = keys.identity('alice');
      await keys.flush();
      rmSync(join(dir, 'alice.pem'));
      const restarted = new FileUserKeys(dir);
      assert.ok(!restarted.has('alice'));
      const again = restarted.identity('alice');
      assert.ok(Buffer.from(again.bundle.sig).equals(Buffer.from(first.bundle.sig)));
      // The signature key and the sealing key differ, and another directory derives other keys.
      assert.ok(!Buffer.from(first.bundle.sig).equals(Buffer.from(first.bundle.kem)));
      const other = new FileUserKeys(join(dir, 'other')).identity('alice');
      assert.ok(!Buffer.from(other.bundle.sig).equals(Buffer.from(first.bundle.sig)));
      await restarted.flush();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in files: a key found on disk is used before any derived one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'user-keys-'));
    try {
      const keys = new FileUserKeys(dir);
      const drawn = Identity.generate();
      drawn.save(join(dir, 'carol.pem'));
      assert.ok(keys.has('carol'));
      assert.ok(Buffer.from(keys.identity('carol').bundle.sig).equals(Buffer.from(drawn.bundle.sig)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in files: a copy cut short by a crash is the derived key again; any other bad file is an error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'user-keys-'));
    try {
      const keys = new FileUserKeys(dir);
      const first = keys.identity('alice');
      await keys.flush();
      const pem = readFileSync(join(dir, 'alice.pem'), 'utf8');
      for (const torn of ['', pem.slice(0, 40), pem.slice(0, pem.length - 30)]) {
        writeFileSync(join(dir, 'alice.pem'), torn, { mode: 0o600 });
        const again = new FileUserKeys(dir).identity('alice');
        assert.ok(Buffer.from(again.bundle.sig).equals(Buffer.from(first.bundle.sig)), `torn at ${torn.length}`);
        assert.equal(readFileSync(join(dir, 'alice.pem'), 'utf8'), pem, 'the file is whole again');
      }
      // Not a beginning of the derived key: someone else's broken file, refused as before.
      writeFileSync(join(dir, 'alice.pem'), '-----BEGIN PRIVATE KEY-----\ngarbage', { mode: 0o600 });
      assert.throws(() => new FileUserKeys(dir).identity('alice'), /PRIVATE KEY|unreadable/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in files: a discarded key leaves no file, and the same name later gets the same key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'user-keys-'));
    try {
      const keys = new FileUserKeys(dir);
      const first = keys.identity('refused');
      keys.discard('refused');
      await keys.flush();
      assert.ok(!existsSync(join(dir, 'refused.pem')));
      assert.ok(!keys.has('refused'));
      assert.ok(Buffer.from(keys.identity('refused').bundle.sig).equals(Buffer.from(first.bundle.sig)));
      await keys.flush();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in files: a secret others can read is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'user-keys-'));
    try {
      new FileUserKeys(dir);
      chmodSync(join(dir, '.key-secret'), 0o644);
      assert.throws(() => new FileUserKeys(dir), /accessible by others/);
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
