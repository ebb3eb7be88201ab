/**
 * The bootstrap's and adapter's data directories opened in process
 * (data-dir.ts): the registry's witness and the refusal of a node key
 * missing beside state.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openAdapterData, openBootstrapData } from '../../src/secp2psip/data-dir.ts';
import { readRegistryWitness } from '../../src/secp2psip/registry.ts';
import { isOverlayError } from '../../src/util/errors.ts';

const base = mkdtempSync(join(tmpdir(), 'data-dir-'));
after(() => rmSync(base, { recursive: true, force: true }));
const keys = (b: number) => ({ signKey: new Uint8Array(32).fill(b), sealKey: new Uint8Array(32).fill(b + 1) });

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(isOverlayError(e, 'DATA_UNUSABLE'), String(e));
    assert.doesNotMatch(e.message, /\n/);
    return e.message;
  }
  assert.fail('not refused');
}

describe('data directories', () => {
  it('the witness follows the registry from no users to some and back', () => {
    const dir = join(base, 'w');
    const d = openBootstrapData(dir);
    const witness = join(dir, 'registry.users');
    assert.equal(readRegistryWitness(witness)?.users, 0);
    d.registry.claim('ann', keys(1), 1);
    assert.equal(readRegistryWitness(witness)?.users, 1, 'written at the first registration');
    d.registry.claim('ben', keys(3), 1);
    d.registry.close();
    assert.equal(readRegistryWitness(witness)?.users, 2, 'and at close');
    const again = openBootstrapData(dir);
    assert.equal(again.registry.count(), 2);
    again.registry.release('ann');
    again.registry.release('ben');
    assert.equal(readRegistryWitness(witness)?.users, 0, 'every name released: an empty registry is right');
    again.registry.close();
    rmSync(join(dir, 'registry.sqlite'));
    // Gone, with a witness of 0 users and a key: the bootstrap ran and had none; nothing is lost.
    openBootstrapData(dir).registry.close();
  });

  it('a node key made ahead of the first start is no evidence of users; --accept-empty-registry is said', () => {
    const dir = join(base, 'ahead');
    openBootstrapData(dir).registry.close();
    rmSync(join(dir, 'registry.users'));
    rmSync(join(dir, 'registry.sqlite'));
    const d = openBootstrapData(dir);
    assert.equal(d.acceptedEmpty, undefined);
    d.registry.claim('al', keys(9), 1);
    d.registry.close();
    rmSync(join(dir, 'registry.sqlite'));
    assert.match(
      refusal(() => openBootstrapData(dir)),
      /is missing, but this bootstrap had 1 registered users/,
    );
    const again = openBootstrapData(dir, { acceptEmptyRegistry: true });
    assert.deepEqual(again.acceptedEmpty, { hadUsers: 1 });
    again.registry.close();
  });

  it('an unreadable witness still counts as evidence', () => {
    const dir = join(base, 'garbled');
    const d = openBootstrapData(dir);
    d.registry.claim('cy', keys(5), 1);
    d.registry.close();
    writeFileSync(join(dir, 'registry.users'), '{not json');
    rmSync(join(dir, 'registry.sqlite'));
    assert.match(
      refusal(() => openBootstrapData(dir)),
      /is missing, but this bootstrap had 1 registered users/,
    );
  });

  it('an adapter: a fresh directory gets a key; a key missing beside trusted keys is refused unless asked', () => {
    const dir = join(base, 'adapter');
    const first = openAdapterData(dir);
    first.trust.accept({ name: 'dee', ...keys(7), registeredAt: 1 }, 1);
    first.trust.close();
    rmSync(join(dir, 'node', 'identity.pem'));
    assert.match(
      refusal(() => openAdapterData(dir)),
      /identity\.pem: missing, but the data directory holds trust\.sqlite \(1 trusted users\).*--new-node-key/,
    );
    const renewed = openAdapterData(dir, undefined, { newNodeKey: true });
    assert.notDeepEqual(renewed.identity.bundle.sig, first.identity.bundle.sig);
    assert.equal(renewed.trust.check({ name: 'dee', ...keys(7), registeredAt: 1 }), 'match');
    renewed.trust.close();
    assert.ok(existsSync(join(dir, 'node', 'identity.pem')));
  });

  it('an adapter whose directory holds only the pinned bootstrap (first start with host:port) gets its key', () => {
    const dir = join(base, 'adapter-pinned');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'bootstrap.json'), '{}');
    writeFileSync(join(dir, 'bootstraps.json'), '{}');
    const first = openAdapterData(dir);
    first.trust.close();
    assert.ok(existsSync(join(dir, 'node', 'identity.pem')));
  });
});
