import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import {
  countIn,
  type NetnsPhone,
  netnsPhoneCommand,
  waitForMore,
  waitForNetnsPhone,
} from '../support/baresip-netns.ts';
import { NetnsLayout } from '../support/netns-layout.ts';
import { type Host, iptablesUnavailable, type Testnet } from '../support/testnet.ts';

/**
 * A phone's flow survives its adapter's restart (docs/design.md "Phones
 * behind NAT and over TCP"). alice's phone (Debian's baresip) sits behind a
 * NAT router and registers over UDP with adapter A for an hour; A is stopped
 * and started again on the same ports and data directory. Without a new
 * REGISTER from alice, bob (behind a NAT of his own) calls her: the call
 * reaches her phone through the NAT mapping it opened before the restart,
 * over the flow A got back from its bindings file, and A's keep-alives pass
 * through her router again.
 */
const unavailable = iptablesUnavailable() ?? (haveBinary('baresip') ? undefined : 'baresip is not installed');

/** What baresip prints for each REGISTER it sends (its -s trace). */
const REGISTER_SENT = /\nREGISTER sip:/;

describe('a phone behind a NAT keeps its flow across its adapter restarting', {
  skip: unavailable ?? false,
  timeout: 240_000,
}, () => {
  let lay: NetnsLayout;
  let net: Testnet;
  let hostA: Host;
  let hostB: Host;
  let aliceRouter: Host;
  let alice: NetnsPhone;
  let bob: NetnsPhone;

  before(async () => {
    lay = await NetnsLayout.build({
      prefix: 'sp2tflw',
      tmp: 'secp2psip-flow-restart-',
      hosts: ['boot', 'A', 'B'],
      nats: [
        { router: 'aliceRouter', behind: ['aliceLan'] },
        { router: 'bobRouter', behind: ['bobLan'] },
      ],
      daemons: {
        boot: { kind: 'bootstrap', on: 'boot' },
        A: { kind: 'adapter', on: 'A' },
        B: { kind: 'adapter', on: 'B' },
      },
    });
    net = lay.net;
    [hostA, hostB, aliceRouter] = ['A', 'B', 'aliceRouter'].map((n) => lay.host(n));
    await lay.start();
    // An hour between registrations (the first `regint` of the account wins over the helper's 60 s).
    alice = lay.phone('alice', 'aliceLan', `sip:alice@${hostA.addr}:5060`, { accountParams: ';regint=3600' });
    bob = lay.phone('bob', 'bobLan', `sip:bob@${hostB.addr}:5060`);
    await waitForNetnsPhone('registration', alice, /alice@.*200 OK/, 60_000);
    await waitForNetnsPhone('registration', bob, /bob@.*200 OK/, 60_000);
  });

  after(async () => {
    await lay?.destroy();
  });

  it('after the restart a call reaches the phone over its restored flow, with no new REGISTER; keep-alives resume', async () => {
    assert.match(alice.out(), /200 OK[^#]*Contact: <sip:alice[^>]*>;expires=3600/, 'alice registered for an hour');
    // Counts the keep-alives (a CRLFCRLF datagram: 32 bytes of IP) A sends that alice's router forwards to her over
    // the NAT mapping her REGISTER opened. No target: the packet goes on to the router's own rules.
    const keepAlive = [
      '-i',
      'eth0',
      '-p',
      'udp',
      '-s',
      hostA.addr,
      '--sport',
      '5060',
      '-m',
      'length',
      '--length',
      '32',
    ];
    await net.exec(aliceRouter, ['iptables', '-w', '-I', 'FORWARD', '1', ...keepAlive]);
    const forwardedKeepAlives = async () => {
      const { stdout } = await net.exec(aliceRouter, ['iptables', '-w', '-L', 'FORWARD', '1', '-v', '-n', '-x']);
      return Number(stdout.trim().split(/\s+/)[0]);
    };

    const registers = countIn(alice, REGISTER_SENT);
    const a = lay.daemon('A');
    a.proc.kill('SIGTERM');
    if (a.proc.exitCode === null) await once(a.proc, 'exit');
    const { d: restarted } = await lay.startDaemon('A');
    assert.match(restarted.err(), /"restored":1.*phone bindings restored/);
    const keepAlivesBefore = await forwardedKeepAlives();

    await netnsPhoneCommand(net, bob, 'dial', `sip:alice@${hostB.addr}:5060`);
    await waitForMore(alice, /Call established/, 0, 'the call at alice', 40_000, () => lay.logs());
    await waitForMore(bob, /Call established/, 0, 'the call at bob', 10_000, () => lay.logs());
    // The INVITE came from the restarted A to alice's private address, through her router's mapping.
    assert.match(
      alice.out(),
      new RegExp(
        `UDP ${hostA.addr}:5060 -> ${alice.host.addr}:5060\\s*\\r?\\nINVITE sip:alice[^@]*@${alice.host.addr}`,
      ),
    );
    await netnsPhoneCommand(net, alice, 'hangup', '');
    await waitForMore(bob, /\nBYE sip:/, 0, 'BYE at bob', 15_000, () => lay.logs());

    // A's keep-alives go to the restored flow (every 20 s: sip/flow-keepalive.ts) and reach alice.
    const end = Date.now() + 45_000;
    while ((await forwardedKeepAlives()) <= keepAlivesBefore) {
      if (Date.now() > end) assert.fail(`no keep-alive from the restarted adapter reached alice\n${lay.logs()}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(countIn(alice, REGISTER_SENT), registers, 'alice did not register again');
  });
});
