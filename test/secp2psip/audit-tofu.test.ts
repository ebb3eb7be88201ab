/**
 * Trust on first use inside the call flow (issue requirement: the adapter
 * remembers each callee key it verified and refuses a different one later
 * unless the bootstrap shows the user re-registered it). The TrustStore unit
 * test covers the store; this drives whole calls on the in-memory ring.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Identity } from '../../src/identity/identity.ts';
import { UserSigner } from '../../src/identity/user-key.ts';
import type { AdapterNode } from '../../src/secp2psip/adapter-node.ts';
import type { LocalUser } from '../../src/secp2psip/call-common.ts';
import { placeCall } from '../../src/secp2psip/caller.ts';
import {
  DOMAIN,
  decodeLocation,
  encodeBundle,
  encodeLocation,
  type LocationRecord,
  locationTbs,
} from '../../src/secp2psip/messages.ts';
import { Registry } from '../../src/secp2psip/registry.ts';
import { openRingValue, pieceKey, sealRingValue } from '../../src/secp2psip/ring-records.ts';
import { encodePiece, splitKey } from '../../src/sharing/index.ts';
import { bindPhone, phoneInvite, SecTestnet } from './testnet.ts';

const K = 3;
const N = 5;

describe('trust on first use in the call flow (in-memory ring)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'audit-tofu-'));
  const lines: string[] = [];
  let t: SecTestnet;
  let A: AdapterNode;
  let alice: LocalUser;

  const call = (callee: string) => t.settle(placeCall(A.caller, phoneInvite('alice', callee), alice, callee));

  /** Every ring node holding `key`: replace the stored value. */
  function overwrite(key: string, value: (old: Uint8Array) => Uint8Array): number {
    let n = 0;
    for (const node of [...t.adapters.map((a) => a.ring), ...t.bootstraps.map((b) => b.ring)]) {
      const rec = node.store.get(key);
      if (!rec || !(rec.value instanceof Uint8Array)) continue;
      node.store.delete(key);
      node.store.put({ ...rec, value: value(rec.value) });
      n++;
    }
    return n;
  }

  /**
   * Another key for `name` everywhere in the ring, written as a bootstrap
   * would (a stolen write key): the n pieces, and the location record signed
   * by the new key. The bundle even claims a later registration.
   */
  async function replaceKey(name: string): Promise<void> {
    const fake = Identity.generate();
    const signer = UserSigner.fromIdentity(fake);
    const at = t.clock.wallNow() + 1;
    const bundle = { name, signKey: signer.key.encode(), sealKey: fake.bundle.kem, registeredAt: at };
    const boot = t.bootstraps[0].identity;
    const pieces = await splitKey(Uint8Array.from(encodeBundle(bundle)), N, K);
    for (const [j, p] of pieces.entries()) {
      const key = pieceKey(name, j + 1);
      assert.ok(overwrite(key, () => sealRingValue(boot, key, encodePiece(p), at)) > 0, key);
    }
    const replaced = overwrite(name, (old) => {
      const env = openRingValue(old);
      const l = env.ok ? decodeLocation(env.value.p) : undefined;
      assert.ok(l?.ok);
      const { sig: _sig, admission, ...body } = l.value;
      const loc: LocationRecord = { ...body, admission, sig: signer.sign(DOMAIN.location, locationTbs(body)) };
      return sealRingValue(boot, name, encodeLocation(loc), at);
    });
    assert.ok(replaced > 0);
  }

  before(async () => {
    const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
    t = await SecTestnet.create(6, { k: K, n: N, seed: 33, logger, registryPath: (i) => join(dir, `reg-${i}.sqlite`) });
    A = t.adapters[0];
    alice = await t.settle(A.ensureUser('alice'));
    for (const [i, name] of [
      [1, 'bob'],
      [2, 'carl'],
    ] as const) {
      const node = t.adapters[i];
      await t.settle(node.ensureUser(name));
      bindPhone(node, name, `sip:${name}@10.0.0.${i}:5080`);
    }
  });
  after(() => {
    t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a callee key that changed in the ring without a re-registration is refused (403), the first key stays trusted', async () => {
    const first = await call('bob');
    assert.ok(first.ok, first.ok ? '' : first.reason);
    const trusted = A.trust.get('bob')?.signKey;
    assert.ok(trusted);

    await replaceKey('bob');
    lines.length = 0;
    const second = await call('bob');
    assert.ok(!second.ok, 'no 302 for a changed key');
    assert.equal(second.status, 403);
    assert.match(second.reason, /key of bob changed since first use/);
    assert.ok(lines.some((l) => /key differs from the one trusted before/.test(l)));
    assert.deepEqual(A.trust.get('bob')?.signKey, trusted);
  });

  it('a new key is trusted once the bootstrap shows the user registered it later', async () => {
    const first = await call('carl');
    assert.ok(first.ok, first.ok ? '' : first.reason);
    const old = A.trust.get('carl');
    assert.ok(old);

    // The operator releases the name at its bootstrap (`secp2psip bootstrap --release carl`).
    await t.run(1000);
    const registry = new Registry(join(dir, 'reg-0.sqlite'));
    assert.equal(registry.release('carl'), true);
    registry.close();
    const C = t.adapters[2];
    const renewed = await t.settle(C.registerUser('carl'));
    assert.notDeepEqual(renewed.bundle.signKey, old.signKey);
    assert.ok(renewed.bundle.registeredAt > old.registeredAt);

    lines.length = 0;
    const second = await call('carl');
    assert.ok(second.ok, second.ok ? '' : second.reason);
    assert.ok(lines.some((l) => /bootstrap confirms a re-registration/.test(l)));
    assert.deepEqual(A.trust.get('carl')?.signKey, renewed.bundle.signKey);
  });
});
