import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseRelayAddr } from '../../src/rpc/relay.ts';
import { DaemonPair } from './daemon-pair.ts';
import { TestPhones, udpPeer } from './phones.ts';

/**
 * A ring client (an adapter behind a NAT, roles.ts) whose relay stops: after two missed renewals another ring
 * member relays instead, its ring address names the new set, its users are registered again with it, and calls
 * to them keep working. On real sockets (loopback).
 */
describe('a ring client replaces a relay that stopped', { timeout: 120_000 }, () => {
  let pair: DaemonPair;
  const phones = new TestPhones();
  after(async () => {
    await pair?.close();
    await phones.close();
  });

  it("takes another member as relay, names it in its address and in its users' records; calls go on", async () => {
    pair = await DaemonPair.start('secp2psip-relay-client-', { stabilizeMs: 300 });
    const R1 = await pair.adapter('r1');
    const C = await pair.adapter('c', { behindNat: true, relayRenewMs: 300 });
    const relaysOf = () => {
      const p = parseRelayAddr(C.node.endpoint.self.addr);
      return p.ok ? p.value.map((r) => r.addr) : [];
    };
    const r1 = R1.node.endpoint.self.addr;
    assert.ok(relaysOf().includes(r1), `R1 relays for C (${relaysOf()})`);
    const R2 = await pair.adapter('r2');
    const bob = await phones.add('bob');
    const alice = await phones.add('alice');
    assert.equal((await bob.register(udpPeer(C.sipAddr))).status, 200);
    assert.equal((await alice.register(udpPeer(R2.sipAddr))).status, 200);
    const registered = C.node.stats.registrations;
    await R1.close();
    const end = Date.now() + 30_000;
    while (relaysOf().includes(r1) || C.node.stats.registrations === registered) {
      if (Date.now() > end) assert.fail(`R1 was never replaced (relays: ${relaysOf()})`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(relaysOf().includes(R2.node.endpoint.self.addr), `R2 relays for C now (${relaysOf()})`);
    // Bob's record names the new set; alice reaches him (with R2's cache of verified users cold).
    const call = await alice.invite(`sip:bob@${R2.sipAddr}`, udpPeer(R2.sipAddr));
    assert.equal((await alice.bye(call)).status, 200);
  });
});
