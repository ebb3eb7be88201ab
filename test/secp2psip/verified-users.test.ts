import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AdapterNode } from '../../src/secp2psip/adapter-node.ts';
import type { VerifiedUser } from '../../src/secp2psip/key-lookup.ts';
import type { RegisteredPhones } from '../../src/secp2psip/local-phones.ts';
import { SecTestnet } from './testnet.ts';

describe('reads of one user shared by calls that asked before they were sent', () => {
  let t: SecTestnet;
  let A: AdapterNode<RegisteredPhones>;
  let reads: string[];
  before(async () => {
    t = await SecTestnet.create(8, { k: 3, n: 5, seed: 31 });
    A = t.adapters[0];
    await t.settle(A.ensureUser('alice'));
    await t.settle(t.adapters[1].ensureUser('bob'));
    await t.settle(t.adapters[2].ensureUser('carol'));
    A.verified.cacheMs = 0;
    const direct = A.ring.getManyDirect.bind(A.ring);
    reads = [];
    A.ring.getManyDirect = (keys, o) => {
      reads.push(`read ${keys[0]}`);
      return direct(keys, o);
    };
  });
  after(() => t.close());

  it('sends a lone call its own read at once; calls asking while it is under way share the next one', async () => {
    reads.length = 0;
    const order: string[] = reads;
    const shared = A.verified.shared;
    const first = A.verified.verify('bob');
    order.push('asked 1');
    const second = A.verified.verify('bob');
    order.push('asked 2');
    const third = A.verified.verify('bob');
    order.push('asked 3');
    const other = A.verified.verify('carol');
    order.push('asked carol');
    const [u1, u2, u3, c] = await t.settle(Promise.all([first, second, third, other]));
    // The first call's read left before the others asked: theirs is the next one, sent after both asked.
    assert.deepEqual(order, ['read bob', 'asked 1', 'asked 2', 'asked 3', 'read carol', 'asked carol', 'read bob']);
    assert.equal(A.verified.shared, shared + 1, "the third call joined the second one's read");
    assert.notEqual(u1, u2, 'the first call does not take a read sent before the others asked');
    assert.equal(u2, u3, 'the two later calls share one read');
    for (const u of [u1, u2, u3] as VerifiedUser[]) assert.equal(u.bundle.name, 'bob');
    assert.equal(c.bundle.name, 'carol');
  });

  it('never gives a call a read that left before it asked', async () => {
    reads.length = 0;
    const first = A.verified.verify('bob');
    const second = A.verified.verify('bob');
    // Let the shared read leave, then ask again while both reads are under way.
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(reads, ['read bob', 'read bob']);
    const third = A.verified.verify('bob');
    const [u1, u2, u3] = await t.settle(Promise.all([first, second, third]));
    assert.deepEqual(reads, ['read bob', 'read bob', 'read bob'], 'the third call has a read of its own');
    assert.notEqual(u3, u1);
    assert.notEqual(u3, u2);
    // Nothing under way any more: the next call reads at once again.
    reads.length = 0;
    const alone = A.verified.verify('bob');
    assert.deepEqual(reads, ['read bob']);
    await t.settle(alone);
  });
});
