import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { type NetnsPhone, waitForMore } from '../support/baresip-netns.ts';
import type { NetnsDaemon } from '../support/netns-daemons.ts';
import { NetnsLayout } from '../support/netns-layout.ts';
import { iptablesUnavailable } from '../support/testnet.ts';

/**
 * WhanauSIP with a node behind a NAT without port forward (docs/design.md "Adapters behind NAT"): alice's node and
 * the gateway on public hosts, bob's node and his phone (baresip) on a LAN behind a MASQUERADE router. Bob's node
 * is not told (no --behind-nat): it asks a friend to dial its DHT address back, learns it cannot be reached, keeps
 * links to its two friends, which relay for it, and is known by them. Nothing
 * can send SIP to it, so the node or gateway that looks bob up carries the call's SIP to his node over the DHT
 * link, and his node carries his calls to alice's node the same way; both stay in the path, so the BYEs follow.
 */
const unavailable = iptablesUnavailable() ?? (haveBinary('baresip') ? undefined : 'baresip is not installed');

describe('WhanauSIP: two nodes and a gateway on three hosts, one node behind a NAT', {
  skip: unavailable ?? false,
  timeout: 300_000,
}, () => {
  let lay: NetnsLayout;
  const hashes: string[] = [];
  let daemons: NetnsDaemon[] = [];
  let aliceUri = '';
  let bobUri = '';
  let alice: NetnsPhone;
  let bob: NetnsPhone;
  const logs = () => lay.logs(8000);

  /** The daemon's log line matching `re` (its stderr may come a little after its ready line). */
  async function logLine(d: NetnsDaemon, re: RegExp): Promise<string> {
    const end = Date.now() + 5000;
    for (;;) {
      const line = d
        .err()
        .split('\n')
        .find((l) => re.test(l));
      if (line) return line;
      if (Date.now() > end) assert.fail(`no log line matching ${re}\n${d.err().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  before(async () => {
    lay = await NetnsLayout.build({
      prefix: 'sp2twrly',
      tmp: 'whanausip-relay-',
      hosts: ['aliceNode', 'gwHost', 'alicePhone'],
      nats: [{ router: 'bobRouter', behind: ['bobNode', 'bobPhone'] }],
      // Bob's friends know his hash; the address is his LAN one, which they cannot dial.
      daemons: {
        alice: { kind: 'node', on: 'aliceNode' },
        gateway: { kind: 'gateway', on: 'gwHost' },
        bob: { kind: 'node', on: 'bobNode' },
      },
    });
    hashes.push(...['alice', 'gateway', 'bob'].map((n) => lay.hash(n)));
    // Bob's friends first: behind a NAT, his node needs one of them to relay for it.
    await lay.start('alice', 'gateway');
    const [b] = await lay.start('bob');
    daemons = ['alice', 'gateway', 'bob'].map((n) => lay.daemon(n));
    assert.match(b.m[3], new RegExp(`^${hashes[2]}@relay:`), 'bob is known by his relays, not his private address');
    // Found by itself: a friend saw his request come from the router's address, not the one he advertises.
    const found = await logLine(b.d, /not reachable from a friend \(dial-back\)/);
    assert.ok(
      found.includes(`"seenFrom":"${lay.host('bobRouter').addr}:`),
      `dial-back seen from bob's router: ${found}`,
    );
    await logLine(b.d, /behind a NAT: reachable through social peers relaying for it/);
    // The gateway checked itself too (alice's node, its friend, was up to ask) and stays public.
    await logLine(daemons[1], /DHT address reachable from a friend \(dial-back\)/);
    for (const d of daemons.slice(0, 2)) assert.doesNotMatch(d.err(), /not reachable from a friend/);
    aliceUri = `sip:${hashes[0]}@${lay.host('aliceNode').addr}:5060`;
    bobUri = `sip:${hashes[2]}@${lay.host('bobNode').addr}:5060`;
    alice = lay.phone('alice-phone', 'alicePhone', aliceUri);
    bob = lay.phone('bob-phone', 'bobPhone', bobUri);
    await waitForMore(alice, /\{0\/UDP\/v4\} 200 OK/, 0, 'registration', 60_000, logs);
    await waitForMore(bob, /\{0\/UDP\/v4\} 200 OK/, 0, 'registration', 60_000, logs);
    // Two SETUPs everywhere after bob's phone registered: every table holds both records.
    const setups = daemons.map((d) => (d.err().match(/"msg":"setup done"/g) ?? []).length);
    const end = Date.now() + 60_000;
    while (daemons.some((d, i) => (d.err().match(/"msg":"setup done"/g) ?? []).length < setups[i] + 2)) {
      if (Date.now() > end) assert.fail(`SETUPs did not finish\n${logs()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  after(async () => {
    await lay?.destroy();
  });

  it("alice dials bob's hash at the gateway, which carries the call to bob's node over the DHT link", async () => {
    await lay.call(alice, bob, `sip:${hashes[2]}@${lay.host('gwHost').addr}:5060`);
    await logLine(daemons[1], /INVITE over the DHT link to its node/);
  });

  it("bob, behind the NAT, dials alice's hash at his node, which carries the call to hers", async () => {
    await lay.call(bob, alice, `sip:${hashes[0]}@${lay.host('bobNode').addr}:5060`);
    await logLine(daemons[2], /INVITE over the DHT link to its node/);
  });

  it("alice dials bob's hash at her own node", async () => {
    await lay.call(alice, bob, `sip:${hashes[2]}@${lay.host('aliceNode').addr}:5060`);
    await logLine(daemons[0], /INVITE over the DHT link to its node/);
  });
});
