import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.ts';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { type NetnsPhone, netnsPhoneCommand, startNetnsPhone, waitForNetnsPhone } from '../support/baresip-netns.ts';
import { type NetnsDaemon, startNetnsDaemon } from '../support/netns-daemons.ts';
import { type Host, iptablesUnavailable, Testnet } from '../support/testnet.ts';

/**
 * WhanauSIP across hosts: two nodes and a gateway on three public hosts, SIP and DHT bound to 0.0.0.0 (each
 * advertises its host's address), the nodes' phones (baresip) each behind a NAT router of its own. Bob's node
 * cannot publish his phone's private contact, so its record names the node itself, which proxies the call over
 * the phone's flow and stays in the dialog: alice dials bob's hash at the gateway, gets a 302 to bob's node,
 * bob answers and hangs up, and the BYE reaches alice behind her NAT.
 */
const unavailable = iptablesUnavailable() ?? (haveBinary('baresip') ? undefined : 'baresip is not installed');
const WHANAU_READY = /^hash ([0-9a-f]{40})\n[\s\S]*^sip (sip:\S+)\n[\s\S]*^peer (\S+)\n/m;

describe('WhanauSIP nodes and a gateway on three hosts, phones behind NATs', {
  skip: unavailable ?? false,
  timeout: 300_000,
}, () => {
  let net: Testnet;
  let base = '';
  const hashes: string[] = [];
  const daemons: NetnsDaemon[] = [];
  const uris: string[] = [];
  let gwHost: Host;
  let alice: NetnsPhone;
  let bob: NetnsPhone;

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'whanausip-nat-'));
    net = await Testnet.create(5, { prefix: 'sp2twnat' });
    const names = ['alice', 'bob', 'gateway'];
    for (const n of names) {
      const id = Identity.generate();
      id.save(join(base, n, 'identity.pem'));
      hashes.push(id.id);
    }
    gwHost = net.hosts[2];
    const started = await Promise.all(
      names.map((n, i) =>
        startNetnsDaemon(
          net,
          net.hosts[i],
          [
            i === 2 ? 'gateway' : 'node',
            ...['--sip', '0.0.0.0:5060', '--dht', '0.0.0.0:7000', '--data', join(base, n)],
            ...['--setup-period', '3', '--expected-nodes', '3'],
            ...(i === 2 ? [] : ['--open-registration']),
            ...names.flatMap((_, j) => (j === i ? [] : ['--peer', `${hashes[j]}@${net.hosts[j].addr}:7000`])),
          ],
          WHANAU_READY,
        ),
      ),
    );
    for (const [i, s] of started.entries()) {
      daemons.push(s.d);
      uris.push(s.m[2]);
      // Never a wildcard: the SIP URI and the peer spec name the host's own address.
      assert.equal(s.m[2], `sip:${hashes[i]}@${net.hosts[i].addr}:5060`);
      assert.equal(s.m[3], `${hashes[i]}@${net.hosts[i].addr}:7000`);
      // Public hosts: a friend's dial-back (when one was up to ask) never takes them for nodes behind a NAT.
      assert.doesNotMatch(s.d.err(), /not reachable from a friend/);
    }
    const [aliceLan] = await net.addNatLan(net.hosts[3], 1);
    const [bobLan] = await net.addNatLan(net.hosts[4], 1);
    alice = startNetnsPhone(net, aliceLan, base, 'alice-phone', uris[0]);
    bob = startNetnsPhone(net, bobLan, base, 'bob-phone', uris[1]);
    await waitForNetnsPhone('registration', alice, /\{0\/UDP\/v4\} 200 OK/);
    await waitForNetnsPhone('registration', bob, /\{0\/UDP\/v4\} 200 OK/);
  });

  after(async () => {
    await net?.destroy();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it("alice dials bob's hash at the gateway; bob's node proxies to his phone; bob hangs up", async () => {
    const target = `sip:${hashes[1]}@${gwHost.addr}:5060`;
    // Bob's record reaches the gateway at a SETUP: it names bob's node (his phone is behind a NAT).
    const deadline = Date.now() + 40_000;
    let last = '';
    for (;;) {
      const { stdout } = await net.exec(net.hosts[3], [
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
        assert.match(a.contacts[0], new RegExp(`^<sip:${hashes[1]}@${net.hosts[1].addr}:5060>`), last);
        break;
      }
      if (Date.now() > deadline)
        assert.fail(`gateway never redirected (last: ${last})\n${daemons[2].err().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    await netnsPhoneCommand(net, alice, 'dial', target);
    await waitForNetnsPhone('call at bob', bob, /Call established/, 30_000);
    await waitForNetnsPhone('call at alice', alice, /Call established/, 10_000);
    // Bob's phone got the INVITE from his node, over the flow his registration opened through the NAT.
    assert.match(bob.out(), new RegExp(`UDP ${net.hosts[1].addr}:5060 -> ${bob.host.addr}:5060\\s*\\r?\\nINVITE sip:`));
    await netnsPhoneCommand(net, bob, 'hangup', '');
    await waitForNetnsPhone(
      'BYE at alice',
      alice,
      new RegExp(`UDP ${net.hosts[1].addr}:5060 -> ${alice.host.addr}:5060\\s*\\r?\\nBYE sip:`),
      15_000,
    );
  });
});
