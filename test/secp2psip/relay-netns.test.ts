import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import {
  countIn,
  type NetnsPhone,
  netnsPhoneCommand,
  startNetnsPhone,
  waitForNetnsPhone,
} from '../support/baresip-netns.ts';
import { ADAPTER_READY, BOOTSTRAP_READY, type NetnsDaemon, startNetnsDaemon } from '../support/netns-daemons.ts';
import { type Host, iptablesUnavailable, Testnet } from '../support/testnet.ts';

/**
 * Adapters behind NATs without port forwards (docs/design.md "Adapters behind
 * NAT"), on hosts made of network namespaces with iptables MASQUERADE routers:
 * the bootstrap and adapter A on public hosts; adapter B and its phone bob on
 * one home LAN, adapter C and its phone carol on another. B and C find by
 * dial-back that nobody can dial them, join the ring as clients through relays
 * (public ring members), and every call to or from them carries its SIP
 * between the adapters over the ring. Real baresip phones; A is in signed
 * mode, B and C in protected mode, so INVITEs and REDIRECTs both signed and
 * sealed cross the relays.
 *
 * (a) alice (public, at A) <-> bob (behind NAT 1, at B), both ways;
 * (b) bob (behind NAT 1) <-> carol (behind NAT 2, at C), both ways.
 */
const unavailable = iptablesUnavailable() ?? (haveBinary('baresip') ? undefined : 'baresip is not installed');

describe('adapters behind NATs without port forwards, reached through relays', {
  skip: unavailable ?? false,
  timeout: 300_000,
}, () => {
  let net: Testnet;
  let base = '';
  const daemons: NetnsDaemon[] = [];
  let hostA: Host;
  let hostB: Host;
  let hostC: Host;
  let hostD: Host;
  let boot: NetnsDaemon;
  let adapterA: NetnsDaemon;
  let adapterB: NetnsDaemon;
  let adapterC: NetnsDaemon;
  let adapterD: NetnsDaemon;
  let alice: NetnsPhone;
  let bob: NetnsPhone;
  let carol: NetnsPhone;
  let dave: NetnsPhone;
  let ringB = '';
  let ringC = '';

  const daemon = async (host: Host, args: string[], ready: RegExp) => {
    const r = await startNetnsDaemon(net, host, args, ready);
    daemons.push(r.d);
    return r;
  };
  const logs = () =>
    [
      ['alice', alice?.out()],
      ['bob', bob?.out()],
      ['carol', carol?.out()],
      ['A', adapterA?.err()],
      ['B', adapterB?.err()],
      ['C', adapterC?.err()],
      ['dave', dave?.out()],
      ['D', adapterD?.err()],
      ['boot', boot?.err()],
    ]
      .map(([n, s]) => `--- ${n} ---\n${(s ?? '').slice(-12000)}`)
      .join('\n');

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-relay-'));
    net = await Testnet.create(6, { prefix: 'sp2trly' });
    const [bootHost, publicA, routerB, routerC, aliceHost, routerD] = net.hosts;
    hostA = publicA;
    let bobHost: Host;
    let carolHost: Host;
    [hostB, bobHost] = await net.addNatLan(routerB, 2);
    [hostC, carolHost] = await net.addNatLan(routerC, 2);
    let daveHost: Host;
    [hostD, daveHost] = await net.addNatLan(routerD, 2);
    // As home routers do, B's and C's drop unsolicited connections to themselves, and keep a connection's source
    // port (MASQUERADE does when it is free): TCP simultaneous open works between them. D's picks a random port
    // for every connection (a "symmetric" NAT), so the port C dials is never the one D's connection leaves from:
    // no direct connection opens, and D is reached through a relay circuit.
    for (const r of [routerB, routerC, routerD])
      await net.exec(r, [
        'iptables',
        '-w',
        '-A',
        'INPUT',
        '-i',
        'eth0',
        '-p',
        'tcp',
        '-m',
        'conntrack',
        '--ctstate',
        'NEW',
        '-j',
        'DROP',
      ]);
    await net.exec(routerD, [
      'iptables',
      '-w',
      '-t',
      'nat',
      '-I',
      'POSTROUTING',
      '1',
      '-s',
      `${hostD.addr.split('.').slice(0, 3).join('.')}.0/24`,
      '-o',
      'eth0',
      '-j',
      'MASQUERADE',
      '--random-fully',
    ]);
    const b = await daemon(
      bootHost,
      ['bootstrap', '--listen', '0.0.0.0:7000', '--data', join(base, 'boot')],
      BOOTSTRAP_READY,
    );
    boot = b.d;
    const start = (host: Host, dir: string, mode: string) =>
      daemon(
        host,
        [
          'adapter',
          '--sip',
          '0.0.0.0:5060',
          '--bootstrap',
          b.m[1],
          '--data',
          join(base, dir),
          '--open-registration',
          '--mode',
          mode,
        ],
        ADAPTER_READY,
      );
    const a = await start(hostA, 'A', 'signed');
    adapterA = a.d;
    const bb = await start(hostB, 'B', 'protected');
    adapterB = bb.d;
    const cc = await start(hostC, 'C', 'protected');
    adapterC = cc.d;
    const dd = await start(hostD, 'D', 'signed');
    adapterD = dd.d;
    ringB = bb.m[2];
    ringC = cc.m[2];
    alice = startNetnsPhone(net, aliceHost, base, 'alice', `sip:alice@${hostA.addr}:5060`);
    bob = startNetnsPhone(net, bobHost, base, 'bob', `sip:bob@${hostB.addr}:5060`);
    carol = startNetnsPhone(net, carolHost, base, 'carol', `sip:carol@${hostC.addr}:5060`);
    dave = startNetnsPhone(net, daveHost, base, 'dave', `sip:dave@${hostD.addr}:5060`);
    for (const p of [alice, bob, carol, dave]) await waitForNetnsPhone('registration', p, /@.*200 OK/, 60_000);
  });

  after(async () => {
    await net?.destroy();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('adapters behind NATs find it by dial-back and join as clients whose ring address names their relays', () => {
    for (const [ring, d] of [
      [ringB, adapterB],
      [ringC, adapterC],
    ] as const) {
      assert.match(ring, /^relay:/, 'the ring address names relays, not the private address');
      assert.match(d.err(), /not reachable from the bootstrap \(dial-back\): behind a NAT, joining as a client/);
      assert.match(d.err(), /on the ring as a client, through relays/);
    }
    // Public members relay for them.
    assert.match(`${boot.err()}${adapterA.err()}`, /relaying for a client/);
  });

  /** Wait until `re` occurs in the phone's output more than `n` times. */
  async function more(phone: NetnsPhone, re: RegExp, n: number, what: string, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (countIn(phone, re) <= n) {
      if (Date.now() > end || phone.proc.exitCode !== null)
        assert.fail(`${phone.name}: ${what} did not happen\n${logs()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** `caller` dials `callee` through its own adapter at `via`; the callee hangs up; its BYE reaches the caller. */
  async function call(caller: NetnsPhone, callee: NetnsPhone, via: Host): Promise<void> {
    const up = /Call established/;
    const [atCaller, atCallee, byes] = [countIn(caller, up), countIn(callee, up), countIn(caller, /\nBYE sip:/)];
    await netnsPhoneCommand(net, caller, 'dial', `sip:${callee.name}@${via.addr}:5060`);
    await more(callee, up, atCallee, 'call established', 40_000);
    await more(caller, up, atCaller, 'call established', 10_000);
    await netnsPhoneCommand(net, callee, 'hangup', '');
    await more(caller, /\nBYE sip:/, byes, 'BYE from the callee', 15_000);
  }

  it('(a) a phone at a public adapter and one behind a NAT at an adapter without port forward call each other', async () => {
    await call(alice, bob, hostA);
    await call(bob, alice, hostB);
    assert.match(adapterB.err(), /verified alice's INVITE; answering REDIRECT/);
    assert.match(adapterA.err(), /verified bob's INVITE; answering REDIRECT/);
  });

  it('(b) phones behind two NATs, at adapters behind those NATs, call each other over a direct connection', async () => {
    await call(bob, carol, hostB);
    await call(carol, bob, hostC);
    assert.match(adapterC.err(), /verified bob's INVITE; answering REDIRECT/);
    assert.match(adapterB.err(), /verified carol's INVITE; answering REDIRECT/);
    // The link between B and C was opened by TCP simultaneous open, coordinated through a relay.
    assert.match(adapterB.err(), /direct connection to a node behind a NAT \(TCP simultaneous open\)/);
    assert.match(adapterC.err(), /direct connection from behind our NAT \(TCP simultaneous open\)/);
  });

  it('(b) phones behind two NATs call each other through a relay circuit when no direct connection opens', async () => {
    await call(dave, carol, hostD);
    await call(carol, dave, hostC);
    assert.match(adapterC.err(), /verified dave's INVITE; answering REDIRECT/);
    assert.match(adapterD.err(), /verified carol's INVITE; answering REDIRECT/);
    assert.match(adapterD.err(), /no direct connection; using a relay circuit/);
  });
});
