import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { type NetnsPhone, waitForNetnsPhone } from '../support/baresip-netns.ts';
import type { NetnsDaemon } from '../support/netns-daemons.ts';
import { NetnsLayout } from '../support/netns-layout.ts';
import { type Host, iptablesUnavailable } from '../support/testnet.ts';

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
  let lay: NetnsLayout;
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

  before(async () => {
    // As home routers do, B's and C's routers drop unsolicited connections to themselves, and keep a connection's
    // source port (MASQUERADE does when it is free): TCP simultaneous open works between them. D's picks a random
    // port for every connection (a "symmetric" NAT), so the port C dials is never the one D's connection leaves
    // from: no direct connection opens, and D is reached through a relay circuit.
    lay = await NetnsLayout.build({
      prefix: 'sp2trly',
      tmp: 'secp2psip-relay-',
      hosts: ['boot', 'A', 'alice'],
      nats: [
        { router: 'routerB', behind: ['B', 'bob'], dropUnsolicited: true },
        { router: 'routerC', behind: ['C', 'carol'], dropUnsolicited: true },
        { router: 'routerD', behind: ['D', 'dave'], dropUnsolicited: true, randomFully: true },
      ],
      daemons: {
        boot: { kind: 'bootstrap', on: 'boot' },
        A: { kind: 'adapter', on: 'A', mode: 'signed' },
        B: { kind: 'adapter', on: 'B', mode: 'protected' },
        C: { kind: 'adapter', on: 'C', mode: 'protected' },
        D: { kind: 'adapter', on: 'D', mode: 'signed' },
      },
    });
    [hostA, hostB, hostC, hostD] = ['A', 'B', 'C', 'D'].map((n) => lay.host(n));
    await lay.start();
    [boot, adapterA, adapterB, adapterC, adapterD] = ['boot', 'A', 'B', 'C', 'D'].map((n) => lay.daemon(n));
    ringB = lay.get('B').m[2];
    ringC = lay.get('C').m[2];
    alice = lay.phone('alice', 'alice', `sip:alice@${hostA.addr}:5060`);
    bob = lay.phone('bob', 'bob', `sip:bob@${hostB.addr}:5060`);
    carol = lay.phone('carol', 'carol', `sip:carol@${hostC.addr}:5060`);
    dave = lay.phone('dave', 'dave', `sip:dave@${hostD.addr}:5060`);
    for (const p of [alice, bob, carol, dave]) await waitForNetnsPhone('registration', p, /@.*200 OK/, 60_000);
  });

  after(async () => {
    await lay?.destroy();
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

  /** `caller` dials `callee` through its own adapter at `via`; the callee hangs up; its BYE reaches the caller. */
  const call = (caller: NetnsPhone, callee: NetnsPhone, via: Host) =>
    lay.call(caller, callee, `sip:${callee.name}@${via.addr}:5060`);

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
