import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { countIn, type NetnsPhone, netnsPhoneCommand, waitForNetnsPhone } from '../support/baresip-netns.ts';
import type { NetnsDaemon } from '../support/netns-daemons.ts';
import { NetnsLayout } from '../support/netns-layout.ts';
import { type Host, iptablesUnavailable, type Testnet } from '../support/testnet.ts';

/**
 * Several hosts for real (network namespaces, test/support/testnet.ts): the
 * bootstrap and two adapters on three public hosts, every daemon bound to a
 * wildcard (0.0.0.0), and each phone (Debian's baresip, unmodified) behind a
 * NAT router of its own, so neither phone's Contact is reachable from
 * anywhere but its own LAN. The adapters advertise their hosts' addresses and
 * stay in the path of both calls (docs/design.md "Phones behind NAT"): alice
 * calls bob (signed INVITE, sealed REDIRECT: bob's adapter is in protected
 * mode), bob hangs up; bob calls alice (sealed INVITE), alice hangs up.
 */
const unavailable = iptablesUnavailable() ?? (haveBinary('baresip') ? undefined : 'baresip is not installed');

describe('phones behind NAT, daemons bound to wildcards on three hosts', {
  skip: unavailable ?? false,
  timeout: 240_000,
}, () => {
  let lay: NetnsLayout;
  let net: Testnet;
  let boot: Host;
  let hostA: Host;
  let hostB: Host;
  let adapterA: NetnsDaemon;
  let adapterB: NetnsDaemon;
  let alice: NetnsPhone;
  let bob: NetnsPhone;
  /** The router of alice's LAN. */
  let aliceRouter: Host;
  /** A second host on alice's LAN, for an adapter behind her NAT. */
  let homeAdapter: Host;

  before(async () => {
    lay = await NetnsLayout.build({
      prefix: 'sp2tnat',
      tmp: 'secp2psip-nat-',
      hosts: ['boot', 'A', 'B'],
      nats: [
        { router: 'aliceRouter', behind: ['aliceLan', 'homeAdapter'] },
        { router: 'bobRouter', behind: ['bobLan'] },
      ],
      daemons: {
        boot: { kind: 'bootstrap', on: 'boot' },
        A: { kind: 'adapter', on: 'A', mode: 'signed' },
        B: { kind: 'adapter', on: 'B', mode: 'protected' },
      },
    });
    net = lay.net;
    [boot, hostA, hostB, aliceRouter, homeAdapter] = ['boot', 'A', 'B', 'aliceRouter', 'homeAdapter'].map((n) =>
      lay.host(n),
    );
    await lay.start('boot');
    // A wildcard is never advertised: the spec names the host's own address.
    assert.equal(lay.bootstrapSpec().split('@')[1], `${boot.addr}:7000`);
    const [a, bb] = await lay.start('A', 'B');
    adapterA = a.d;
    adapterB = bb.d;
    assert.deepEqual([a.m[1], a.m[2].split(':')[0]], [`${hostA.addr}:5060`, hostA.addr]);
    assert.deepEqual([bb.m[1], bb.m[2].split(':')[0]], [`${hostB.addr}:5060`, hostB.addr]);
    alice = lay.phone('alice', 'aliceLan', `sip:alice@${hostA.addr}:5060`);
    bob = lay.phone('bob', 'bobLan', `sip:bob@${hostB.addr}:5060`);
    await waitForNetnsPhone('registration', alice, /alice@.*200 OK/, 60_000);
    await waitForNetnsPhone('registration', bob, /bob@.*200 OK/, 60_000);
  });

  after(async () => {
    await lay?.destroy();
  });

  it('alice calls bob, bob hangs up; bob calls alice, alice hangs up', async () => {
    const logs = () =>
      `${alice.out().slice(-3000)}\n--- bob ---\n${bob.out().slice(-3000)}\n--- A ---\n${adapterA.err().slice(-2000)}\n--- B ---\n${adapterB.err().slice(-2000)}`;
    await netnsPhoneCommand(net, alice, 'dial', `sip:bob@${hostA.addr}:5060`);
    await waitForNetnsPhone('call 1 at bob', bob, /Call established/, 30_000).catch((e) =>
      assert.fail(`${e}\n${logs()}`),
    );
    await waitForNetnsPhone('call 1 at alice', alice, /Call established/, 10_000);
    // bob's phone got the INVITE from his adapter, addressed to his registered (private) contact.
    assert.match(
      bob.out(),
      new RegExp(`UDP ${hostB.addr}:5060 -> ${bob.host.addr}:5060\\s*\\r?\\nINVITE sip:bob[^@]*@${bob.host.addr}`),
    );
    await netnsPhoneCommand(net, bob, 'hangup', '');
    // The callee's BYE reached alice behind her NAT, through both adapters.
    await waitForNetnsPhone(
      'BYE at alice',
      alice,
      new RegExp(`UDP ${hostA.addr}:5060 -> ${alice.host.addr}:5060\\s*\\r?\\nBYE sip:alice[^@]*@`),
      15_000,
    );
    await waitForNetnsPhone('BYE answered at bob', bob, /SIP\/2.0 200 OK[\s\S]*CSeq: \d+ BYE/, 15_000);

    await netnsPhoneCommand(net, bob, 'dial', `sip:alice@${hostB.addr}:5060`);
    await waitForNetnsPhone('call 2 at alice', alice, /Call established[\s\S]*Call established/, 30_000).catch((e) =>
      assert.fail(`${e}\n${logs()}`),
    );
    await waitForNetnsPhone('call 2 at bob', bob, /Call established[\s\S]*Call established/, 10_000);
    await netnsPhoneCommand(net, alice, 'hangup', '');
    await waitForNetnsPhone(
      'BYE at bob',
      bob,
      new RegExp(`UDP ${hostB.addr}:5060 -> ${bob.host.addr}:5060\\s*\\r?\\nBYE sip:bob[^@]*@`),
      15_000,
    );
    assert.equal(countIn(alice, /SIP\/2.0 302 /), 1, 'one 302 for alice, none looped');
    assert.match(adapterB.err(), /verified alice's INVITE; answering REDIRECT/);
    assert.match(adapterA.err(), /verified bob's INVITE; answering REDIRECT/);
  });

  it('an adapter behind a NAT without port forward detects it by dial-back and joins as a client through relays', async () => {
    const { d, m } = await lay.startDaemon('home', { kind: 'adapter', on: 'homeAdapter' });
    try {
      // Its ring address names the public members relaying for it, never its private address.
      assert.match(m[2], /^relay:/);
      assert.ok(!m[2].includes(homeAdapter.addr));
      // The bootstrap saw it at its router's address.
      assert.ok(d.err().includes(`"seenFrom":"${aliceRouter.addr}:`));
      assert.match(d.err(), /joining as a client through relays/);
    } finally {
      d.proc.kill('SIGTERM');
      if (d.proc.exitCode === null) await once(d.proc, 'exit');
    }
  });

  it('an adapter at home behind a NAT with forwarded ports joins, and its phone takes a call from a phone behind another NAT', async () => {
    const router = aliceRouter;
    const home = homeAdapter.addr;
    // The home router forwards the ring port (TCP 7100) and SIP (UDP and TCP 5070 -> 5060) to the adapter, and
    // maps the adapter's SIP port back to 5070 on the way out, as a UPnP or manual port forward does.
    const ipt = (...a: string[]) => net.exec(router, ['iptables', '-w', ...a]);
    const prerouting = ['-t', 'nat', '-A', 'PREROUTING', '-i', 'eth0'];
    for (const [proto, port, to] of [
      ['tcp', '7100', `${home}:7100`],
      ['udp', '5070', `${home}:5060`],
      ['tcp', '5070', `${home}:5060`],
    ])
      await ipt(...prerouting, '-p', proto, '--dport', port, '-j', 'DNAT', '--to-destination', to);
    await ipt(
      '-t',
      'nat',
      '-I',
      'POSTROUTING',
      '1',
      '-s',
      home,
      '-p',
      'udp',
      '--sport',
      '5060',
      '-o',
      'eth0',
      '-j',
      'SNAT',
      '--to-source',
      `${router.addr}:5070`,
    );
    await ipt('-I', 'FORWARD', '1', '-i', 'eth0', '-d', home, '-j', 'ACCEPT');
    const started = await lay.startDaemon('home2', {
      kind: 'adapter',
      on: 'homeAdapter',
      args: ['--rpc', '0.0.0.0:7100', '--advertise', `${router.addr}:5070`, '--advertise-rpc', `${router.addr}:7100`],
    });
    assert.deepEqual([started.m[1], started.m[2]], [`${router.addr}:5070`, `${router.addr}:7100`]);
    assert.match(started.d.err(), /ring address reachable from the bootstrap/);
    // Not 5061 or 5062: the adapter on this host takes them for SIP over TLS and WebSocket.
    const carol = lay.phone('carol', 'homeAdapter', `sip:carol@${home}:5060`, { sipPort: 5080 });
    await waitForNetnsPhone('registration', carol, /carol@.*200 OK/, 60_000);
    const calls = (bob.out().match(/Call established/g) ?? []).length;
    await netnsPhoneCommand(net, bob, 'dial', `sip:carol@${hostB.addr}:5060`);
    await waitForNetnsPhone('the call at carol', carol, /Call established/, 30_000);
    await waitForNetnsPhone('the call at bob', bob, new RegExp(`(Call established[\\s\\S]*){${calls + 1}}`), 10_000);
    // carol's phone got the INVITE from her adapter (it stays in the path: the NAT hides carol's contact).
    assert.match(carol.out(), new RegExp(`UDP ${home}:5060 -> ${home}:5080\\s*\\r?\\nINVITE sip:carol`));
    const byeAtBob = new RegExp(`UDP ${hostB.addr}:5060 -> ${bob.host.addr}:5060\\s*\\r?\\nBYE sip:bob`, 'g');
    const byes = (bob.out().match(byeAtBob) ?? []).length;
    await netnsPhoneCommand(net, carol, 'hangup', '');
    // The callee's BYE crossed both NATs: carol's adapter, then bob's, over bob's flow.
    const end = Date.now() + 15_000;
    while ((bob.out().match(byeAtBob) ?? []).length <= byes) {
      if (Date.now() > end) assert.fail(`carol's BYE never reached bob\n${bob.out().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});
