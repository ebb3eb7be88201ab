import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { RunningAdapter } from '../../src/secp2psip/daemon.ts';
import { DaemonPair } from './daemon-pair.ts';
import { TestPhones, udpPeer } from './phones.ts';

/** One phone per user for the whole file: a second phone would add a second binding to the 302. */
const phones = new TestPhones();
after(() => phones.close());

const settle = () => new Promise((r) => setTimeout(r, 1500));

const peer = (a: RunningAdapter) => udpPeer(a.sipAddr);

describe('bootstrap and adapters on real sockets (TLS RPC, UDP SIP)', () => {
  let pair: DaemonPair;
  const adapters: RunningAdapter[] = [];
  after(() => pair?.close());

  it('two phones register with two adapters; alice dials bob by name and reaches his phone directly', async () => {
    pair = await DaemonPair.start('secp2psip-daemon-', { stabilizeMs: 500 });
    for (const name of ['a', 'b', 'c']) adapters.push(await pair.adapter(name));
    await settle(); // the ring links its predecessors and successor lists
    const [A, B] = adapters;
    const alice = await phones.phone('alice');
    const bob = await phones.phone('bob');
    assert.equal((await alice.register(peer(A))).status, 200);
    assert.equal((await bob.register(peer(B))).status, 200);
    assert.equal(statSync(join(pair.dir, 'a', 'users', 'alice.pem')).mode & 0o777, 0o600);
    const call = await alice.invite(`sip:bob@${A.sipAddr}`, peer(A));
    assert.equal(call.redirectedTo, bob.contactUri);
    assert.equal(bob.incoming.length, 1);
    assert.equal(bob.incoming[0].source.port, alice.element.transport.local.port, "the INVITE came from alice's phone");
    assert.equal(A.adapter.stats.redirects, 1);
    assert.equal((await alice.bye(call)).status, 200);
  });

  it('maps an unknown user to 404 and an unregistered phone to 480', async () => {
    const [A, , C] = adapters;
    const alice = await phones.phone('alice');
    await alice.register(peer(A));
    await assert.rejects(alice.invite(`sip:nobody@${A.sipAddr}`, peer(A)), /404/);
    await C.node.ensureUser('carol'); // registered in the overlay, but no phone bound
    await assert.rejects(alice.invite(`sip:carol@${A.sipAddr}`, peer(A)), /480/);
  });

  it('an adapter restarted keeps its user key and its ring address, and can still call and be called', async () => {
    const B = adapters[1];
    const ringAddr = B.node.ring.self.addr;
    await B.close();
    const B2 = await pair.adapter('b');
    // No --rpc: the port chosen on the first start is taken again, so the ring's entries for B stay right.
    assert.equal(B2.node.ring.self.addr, ringAddr);
    await settle();
    const A = adapters[0];
    const bob = await phones.phone('bob');
    assert.equal((await bob.register(peer(B2))).status, 200, 'same key: the bootstrap accepts bob again');
    const alice = await phones.phone('alice');
    await alice.register(peer(A));
    // A trusted bob's key on first use; a new key would be refused now.
    const call = await alice.invite(`sip:bob@${A.sipAddr}`, peer(A));
    assert.equal(call.redirectedTo, bob.contactUri);
    const back = await bob.invite(`sip:alice@${B2.sipAddr}`, peer(B2));
    assert.equal(back.redirectedTo, alice.contactUri);
  });

  it('an adapter whose ring port of the last start is taken starts on another one and remembers that', async () => {
    const C = adapters[2];
    const port = Number(C.node.ring.self.addr.split(':')[1]);
    await C.close();
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
    try {
      const C2 = await pair.adapter('c');
      const now = Number(C2.node.ring.self.addr.split(':')[1]);
      assert.notEqual(now, port);
      assert.equal(readFileSync(join(pair.dir, 'c', 'ring-port'), 'utf8').trim(), String(now));
    } finally {
      squatter.close();
    }
  });
});
