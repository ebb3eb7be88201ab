import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AdapterNode } from '../../src/secp2psip/adapter-node.ts';
import type { LocalUser } from '../../src/secp2psip/call-common.ts';
import { placeCall } from '../../src/secp2psip/caller.ts';
import type { RebuildMemo } from '../../src/secp2psip/key-lookup.ts';
import type { RegisteredPhones } from '../../src/secp2psip/local-phones.ts';
import { pieceKey } from '../../src/secp2psip/ring-records.ts';
import { coveringKeys } from '../../src/secp2psip/ring-fetch.ts';
import { forgedPieces } from './forged-pieces.ts';
import { bindPhone, phoneInvite, SecTestnet } from './testnet.ts';

const K = 3;
const N = 7;

describe('repeated key rebuilds: reused only for the very same fetched bytes', () => {
  let t: SecTestnet;
  let alice: LocalUser;
  let A: AdapterNode<RegisteredPhones>;

  before(async () => {
    t = await SecTestnet.create(8, { k: K, n: N, seed: 11 });
    A = t.adapters[0];
    alice = await t.settle(A.ensureUser('alice'));
    const D = t.adapters[4];
    await t.settle(D.ensureUser('dave'));
    bindPhone(D, 'dave', 'sip:dave@10.0.0.4:5080');
  });
  after(() => t.close());

  const call = () => t.settle(placeCall(A.caller, phoneInvite('alice', 'dave'), alice, 'dave'));
  const memo = () => A.verified.lookup.memo as RebuildMemo;

  /** The keys A's first read of dave takes, by its ring view now. */
  const firstKeys = () =>
    coveringKeys(
      A.ring,
      'dave',
      Array.from({ length: N }, (_, i) => pieceKey('dave', i + 1)),
      K,
    );

  /** Every holder of piece i of `name` serves `v` instead. */
  function serve(name: string, i: number, v: Uint8Array): void {
    for (const node of [...t.adapters.map((a) => a.ring), ...t.bootstraps.map((b) => b.ring)]) {
      const rec = node.store.get(pieceKey(name, i));
      if (!rec) continue;
      node.store.delete(rec.key);
      node.store.put({ ...rec, value: v });
    }
  }

  it('reads the ring on every call and skips only the rebuild of identical records', async () => {
    assert.equal(A.verified.cacheMs, 0, 'no reuse of verified users here: every call looks dave up');
    const first = await call();
    assert.ok(first.ok, first.ok ? '' : first.reason);
    const hits = memo().hits;
    const read: string[][] = [];
    const direct = A.ring.getManyDirect.bind(A.ring);
    A.ring.getManyDirect = (keys, o) => {
      read.push([...keys]);
      return direct(keys, o);
    };
    const again = await call();
    A.ring.getManyDirect = direct;
    assert.ok(again.ok, again.ok ? '' : again.reason);
    assert.equal(memo().hits, hits + 1, 'the second rebuild of the same bytes is recognised');
    assert.ok(again.callee.key.equals(first.callee.key));
    // One read of the location record and the k pieces on the fewest holders (key-lookup.ts firstRead).
    assert.deepEqual(read, [firstKeys()]);
    assert.equal(read[0].length, K + 1);
  });

  it('rebuilds afresh when pieces change: bad ones are named, beyond correction the call fails closed', async () => {
    // Pieces of another key, written as if by the bootstrap (a replayed older split, or a stolen write key).
    const forged = await forgedPieces(t, 'dave', N, K);
    // Two of the pieces the first read takes: it cannot stand, and every piece is read and corrected.
    const [a, b, c] = firstKeys()
      .slice(1)
      .map((k) => Number(k.slice('dave.'.length)));
    serve('dave', a, forged[a - 1]);
    serve('dave', b, forged[b - 1]);
    const hits = memo().hits;
    const fixed = await call();
    assert.ok(fixed.ok, fixed.ok ? '' : fixed.reason);
    assert.deepEqual(fixed.callee.pieces.bad, [a, b], 'the changed pieces are seen, not a remembered rebuild');
    assert.equal(fixed.callee.pieces.used, N);
    assert.equal(memo().hits, hits);
    serve('dave', c, forged[c - 1]);
    const refused = await call();
    assert.ok(!refused.ok && refused.status === 403, JSON.stringify(refused));
  });
});
