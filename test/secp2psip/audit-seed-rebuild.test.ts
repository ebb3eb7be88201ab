/**
 * The seed's own key rebuild (`rebuild: 'seed'`, seed 000 IV.3: k random
 * pieces, no check), kept for the Figure 5 comparison, through whole calls:
 * it verifies calls from k pieces only, and a wrong piece among those k is
 * never turned into a 302 (the rebuilt key then fails the location record).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.ts';
import { UserSigner } from '../../src/identity/user-key.ts';
import { placeCall } from '../../src/secp2psip/caller.ts';
import { encodeBundle } from '../../src/secp2psip/messages.ts';
import { pieceKey, sealRingValue } from '../../src/secp2psip/ring-records.ts';
import { encodePiece, splitKey } from '../../src/sharing/index.ts';
import { bindPhone, phoneInvite, SecTestnet } from './testnet.ts';

const K = 3;
const N = 6;

describe("the seed's rebuild mode in whole calls (in-memory ring)", () => {
  let t: SecTestnet;

  before(async () => {
    t = await SecTestnet.create(6, { k: K, n: N, rebuild: 'seed', seed: 55 });
    const B = t.adapters[1];
    await t.settle(B.ensureUser('bob'));
    bindPhone(B, 'bob', 'sip:bob@10.0.0.2:5080');
  });
  after(() => t.close());

  it('verifies a call from k pieces', async () => {
    const A = t.adapters[0];
    const alice = await t.settle(A.ensureUser('alice'));
    const out = await t.settle(placeCall(A.caller, phoneInvite('alice', 'bob'), alice, 'bob'));
    assert.ok(out.ok, out.ok ? '' : out.reason);
    assert.equal(out.callee.pieces.used, K);
  });

  it('with every piece but k - 1 replaced by pieces of another key, no call gets a 302', async () => {
    // Any k pieces the caller draws include at least one of the other key: the rebuilt key is wrong.
    const fake = Identity.generate();
    const bundle = {
      name: 'bob',
      signKey: UserSigner.fromIdentity(fake).key.encode(),
      sealKey: fake.bundle.kem,
      registeredAt: 1,
    };
    const forged = await splitKey(Uint8Array.from(encodeBundle(bundle)), N, K);
    const at = t.clock.wallNow() + 1;
    for (let i = K; i <= N; i++) {
      const key = pieceKey('bob', i);
      const value = sealRingValue(t.bootstraps[0].identity, key, encodePiece(forged[i - 1]), at);
      for (const node of [...t.adapters.map((a) => a.ring), ...t.bootstraps.map((b) => b.ring)]) {
        const rec = node.store.get(key);
        if (!rec) continue;
        node.store.delete(key);
        node.store.put({ ...rec, value });
      }
    }
    for (const [i, name] of ['carol', 'dave', 'erin'].entries()) {
      const C = t.adapters[2 + i];
      const u = await t.settle(C.ensureUser(name));
      const out = await t.settle(placeCall(C.caller, phoneInvite(name, 'bob'), u, 'bob'));
      assert.ok(!out.ok, `${name} got a 302 from a mixed set of pieces`);
      assert.equal(out.status, 403, out.reason);
    }
  });
});
