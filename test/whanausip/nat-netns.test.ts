import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { type NetnsPhone, netnsPhoneCommand, waitForNetnsPhone } from '../support/baresip-netns.ts';
import { NetnsLayout } from '../support/netns-layout.ts';
import { type Host, iptablesUnavailable, type Testnet } from '../support/testnet.ts';

/**
 * WhanauSIP across hosts: two nodes and a gateway on three public hosts, SIP and DHT bound to 0.0.0.0 (each
 * advertises its host's address), the nodes' phones (baresip) each behind a NAT router of its own. Bob's node
 * cannot publish his phone's private contact, so its record names the node itself, which proxies the call over
 * the phone's flow and stays in the dialog: alice dials bob's hash at the gateway, gets a 302 to bob's node,
 * bob answers and hangs up, and the BYE reaches alice behind her NAT.
 */
const unavailable = iptablesUnavailable() ?? (haveBinary('baresip') ? undefined : 'baresip is not installed');

describe('WhanauSIP nodes and a gateway on three hosts, phones behind NATs', {
  skip: unavailable ?? false,
  timeout: 300_000,
}, () => {
  let lay: NetnsLayout;
  let net: Testnet;
  const names = ['alice', 'bob', 'gateway'];
  const hashes: string[] = [];
  const uris: string[] = [];
  /** The hosts of alice's node, bob's node and the gateway. */
  let hosts: Host[];
  let gwHost: Host;
  let alice: NetnsPhone;
  let bob: NetnsPhone;

  before(async () => {
    lay = await NetnsLayout.build({
      prefix: 'sp2twnat',
      tmp: 'whanausip-nat-',
      hosts: ['aliceNode', 'bobNode', 'gwHost'],
      nats: [
        { router: 'aliceRouter', behind: ['alicePhone'] },
        { router: 'bobRouter', behind: ['bobPhone'] },
      ],
      daemons: {
        alice: { kind: 'node', on: 'aliceNode' },
        bob: { kind: 'node', on: 'bobNode' },
        gateway: { kind: 'gateway', on: 'gwHost' },
      },
    });
    net = lay.net;
    hosts = ['aliceNode', 'bobNode', 'gwHost'].map((n) => lay.host(n));
    gwHost = hosts[2];
    hashes.push(...names.map((n) => lay.hash(n)));
    const started = await Promise.all(names.map((n) => lay.start(n).then(([s]) => s)));
    for (const [i, s] of started.entries()) {
      uris.push(s.m[2]);
      // Never a wildcard: the SIP URI and the peer spec name the host's own address.
      assert.equal(s.m[2], `sip:${hashes[i]}@${hosts[i].addr}:5060`);
      assert.equal(s.m[3], `${hashes[i]}@${hosts[i].addr}:7000`);
      // Public hosts: a friend's dial-back (when one was up to ask) never takes them for nodes behind a NAT.
      assert.doesNotMatch(s.d.err(), /not reachable from a friend/);
    }
    alice = lay.phone('alice-phone', 'alicePhone', uris[0]);
    bob = lay.phone('bob-phone', 'bobPhone', uris[1]);
    await waitForNetnsPhone('registration', alice, /\{0\/UDP\/v4\} 200 OK/);
    await waitForNetnsPhone('registration', bob, /\{0\/UDP\/v4\} 200 OK/);
  });

  after(async () => {
    await lay?.destroy();
  });

  it("alice dials bob's hash at the gateway; bob's node proxies to his phone; bob hangs up", async () => {
    const target = `sip:${hashes[1]}@${gwHost.addr}:5060`;
    // Bob's record reaches the gateway at a SETUP: it names bob's node (his phone is behind a NAT).
    const deadline = Date.now() + 40_000;
    let last = '';
    for (;;) {
      const { stdout } = await net.exec(lay.host('aliceRouter'), [
        process.execPath,
        '--import',
        'tsx',
        'test/whanausip/netns-probe.ts',
        gwHost.addr,
        '5060',
        target,
      ]);
      const a = JSON.parse(stdout) as { status: number; reason: string; contacts: string[] };
      last = `${a.status} ${a.reason} ${a.contacts.join(',')}`;
      if (a.status === 302) {
        assert.match(a.contacts[0], new RegExp(`^<sip:${hashes[1]}@${hosts[1].addr}:5060>`), last);
        break;
      }
      if (Date.now() > deadline)
        assert.fail(`gateway never redirected (last: ${last})\n${lay.daemon('gateway').err().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    await netnsPhoneCommand(net, alice, 'dial', target);
    await waitForNetnsPhone('call at bob', bob, /Call established/, 30_000);
    await waitForNetnsPhone('call at alice', alice, /Call established/, 10_000);
    // Bob's phone got the INVITE from his node, over the flow his registration opened through the NAT.
    assert.match(bob.out(), new RegExp(`UDP ${hosts[1].addr}:5060 -> ${bob.host.addr}:5060\\s*\\r?\\nINVITE sip:`));
    await netnsPhoneCommand(net, bob, 'hangup', '');
    await waitForNetnsPhone(
      'BYE at alice',
      alice,
      new RegExp(`UDP ${hosts[1].addr}:5060 -> ${alice.host.addr}:5060\\s*\\r?\\nBYE sip:`),
      15_000,
    );
  });
});
