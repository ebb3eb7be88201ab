import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.ts';
import {
  bootstrapSpecOf,
  loadBootstrapSet,
  parseBootstrapSpec,
  resolveBootstrap,
  saveBootstrapSet,
} from '../../src/secp2psip/bootstrap-spec.ts';
import type { BootstrapInfo } from '../../src/secp2psip/messages.ts';

describe('the bootstrap set an adapter keeps', () => {
  const dir = mkdtempSync(join(tmpdir(), 'secp2psip-bootset-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const set: BootstrapInfo[] = [0, 1].map((i) => ({
    addr: `127.0.0.1:${7000 + i}`,
    key: Identity.generate().bundle.sig,
  }));
  const down = async (): Promise<Uint8Array> => {
    throw new Error('bootstrap down');
  };

  it('is written 0600 and read back', () => {
    saveBootstrapSet(dir, set);
    assert.equal(statSync(join(dir, 'bootstraps.json')).mode & 0o777, 0o600);
    const back = loadBootstrapSet(dir);
    assert.deepEqual(
      back.map((b) => [b.addr, Buffer.from(b.key).toString('hex')]),
      set.map((b) => [b.addr, Buffer.from(b.key).toString('hex')]),
    );
  });

  it('names a known bootstrap by hash without a handshake, but never one whose key does not hash to it', async () => {
    const spec = parseBootstrapSpec(bootstrapSpecOf(set[1]));
    assert.ok(spec.ok);
    const got = await resolveBootstrap(spec.value, down, dir);
    assert.ok(Buffer.from(got.key).equals(Buffer.from(set[1].key)));
    // Same address, another hash: the kept key does not match, so the handshake is needed (and fails here).
    const other = parseBootstrapSpec(`${'ab'.repeat(20)}@${set[1].addr}`);
    assert.ok(other.ok);
    await assert.rejects(resolveBootstrap(other.value, down, dir), /bootstrap down/);
  });

  it('a bare host:port uses the kept key only when it is also the key pinned on first use', async () => {
    const spec = parseBootstrapSpec(set[0].addr);
    assert.ok(spec.ok);
    await assert.rejects(resolveBootstrap(spec.value, down, dir), /bootstrap down/, 'no pin yet');
    writeFileSync(
      join(dir, 'bootstrap.json'),
      JSON.stringify({ addr: set[0].addr, key: Buffer.from(set[0].key).toString('hex') }),
    );
    const got = await resolveBootstrap(spec.value, down, dir);
    assert.ok(Buffer.from(got.key).equals(Buffer.from(set[0].key)));
  });

  it('an unreadable or odd list is ignored, not fatal', () => {
    writeFileSync(join(dir, 'bootstraps.json'), '{not json');
    assert.deepEqual(loadBootstrapSet(dir), []);
    writeFileSync(join(dir, 'bootstraps.json'), JSON.stringify({ bootstraps: [{ addr: 'x:1', key: 'zz' }, 7] }));
    assert.deepEqual(loadBootstrapSet(dir), []);
    assert.ok(readFileSync(join(dir, 'bootstraps.json'), 'utf8').length > 0);
  });
});
