import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { type NetnsPhone, netnsPhoneCommand, waitForNetnsPhone } from '../support/baresip-netns.ts';
import { NetnsLayout } from '../support/netns-layout.ts';
import { type Host, iptablesUnavailable } from '../support/testnet.ts';

/**
 * Media across two NATs: two baresip phones, each behind a NAT router of its
 * own, call each other through two adapters, with coturn (Debian package
 * coturn) on a public host as their TURN server (`medianat=turn`). The SIP
 * path goes through the adapters (nat-netns.test.ts); RTP goes through TURN.
 * Asserted by counting, inside each phone's host, the UDP packets it sent to
 * and received from the TURN server during the call: RTP at 50 packets a
 * second flows both ways.
 */
const unavailable =
  iptablesUnavailable() ??
  (haveBinary('baresip') ? undefined : 'baresip is not installed') ??
  (haveBinary('turnserver') ? undefined : 'coturn (turnserver) is not installed');

const TURN_USER = 'phone';
const TURN_PASS = 'turn-secret-1';

describe('RTP both ways between phones behind two NATs, through coturn', {
  skip: unavailable ?? false,
  timeout: 240_000,
}, () => {
  let lay: NetnsLayout;
  let hostA: Host;
  let hostB: Host;
  let turnHost: Host;
  let alice: NetnsPhone;
  let bob: NetnsPhone;

  /** UDP packets this phone's host sent to / received from the TURN server (iptables counters). */
  async function turnPackets(phone: NetnsPhone): Promise<{ sent: number; received: number }> {
    const { stdout } = await lay.net.exec(phone.host, ['iptables', '-w', '-L', '-v', '-n', '-x']);
    const count = (chain: string) => {
      const part = stdout.split(/^Chain /m).find((c) => c.startsWith(chain)) ?? '';
      const line = part.split('\n').find((l) => l.includes(turnHost.addr));
      return line ? Number(line.trim().split(/\s+/)[0]) : 0;
    };
    return { sent: count('OUTPUT'), received: count('INPUT') };
  }

  before(async () => {
    // The TURN server and the bootstrap on one public host, adapters A and B on two others; alice and bob each
    // behind a NAT router of their own.
    lay = await NetnsLayout.build({
      prefix: 'sp2tturn',
      tmp: 'secp2psip-turn-',
      hosts: ['turn', 'A', 'B'],
      nats: [
        { router: 'routerA', behind: ['alice'] },
        { router: 'routerB', behind: ['bob'] },
      ],
      daemons: {
        boot: { kind: 'bootstrap', on: 'turn' },
        A: { kind: 'adapter', on: 'A' },
        B: { kind: 'adapter', on: 'B' },
      },
    });
    [turnHost, hostA, hostB] = ['turn', 'A', 'B'].map((n) => lay.host(n));
    lay.net.spawn(turnHost, [
      'turnserver',
      '-n',
      '--listening-ip',
      turnHost.addr,
      '--relay-ip',
      turnHost.addr,
      '--listening-port',
      '3478',
      '--min-port',
      '49152',
      '--max-port',
      '49400',
      '--lt-cred-mech',
      '--realm',
      'secp2psip',
      '--user',
      `${TURN_USER}:${TURN_PASS}`,
      '--fingerprint',
      '--no-tls',
      '--no-dtls',
      '--no-cli',
      '--log-file',
      'stdout',
    ]);
    await lay.start();
    const media = {
      modules: ['ausine.so', 'stun.so', 'turn.so'],
      audioSource: 'ausine,440',
      config: ['ausrc_srate 48000', 'ausrc_channels 2'],
      accountParams: `;medianat=turn;stunserver=turn:${turnHost.addr}:3478;stunuser=${TURN_USER};stunpass=${TURN_PASS}`,
    };
    alice = lay.phone('alice', 'alice', `sip:alice@${hostA.addr}:5060`, media);
    bob = lay.phone('bob', 'bob', `sip:bob@${hostB.addr}:5060`, media);
    for (const p of [alice, bob])
      for (const chain of ['INPUT', 'OUTPUT'])
        await lay.net.exec(p.host, [
          'iptables',
          '-w',
          '-A',
          chain,
          '-p',
          'udp',
          chain === 'INPUT' ? '-s' : '-d',
          turnHost.addr,
        ]);
    await waitForNetnsPhone('registration', alice, /alice@.*200 OK/, 60_000);
    await waitForNetnsPhone('registration', bob, /bob@.*200 OK/, 60_000);
  });

  after(() => lay?.destroy());

  it('alice calls bob; during three seconds of the call RTP flows both ways through the TURN server', async () => {
    await netnsPhoneCommand(lay.net, alice, 'dial', `sip:bob@${hostA.addr}:5060`);
    await waitForNetnsPhone('call at bob', bob, /Call established/, 30_000);
    await waitForNetnsPhone('call at alice', alice, /Call established/, 10_000);
    // The SDP offer and answer name TURN relay addresses, not the phones' private ones.
    assert.match(alice.out(), new RegExp(`c=IN IP4 ${turnHost.addr.replaceAll('.', '\\.')}`));
    const before = await Promise.all([turnPackets(alice), turnPackets(bob)]);
    await new Promise((r) => setTimeout(r, 3000));
    const after = await Promise.all([turnPackets(alice), turnPackets(bob)]);
    const [da, db] = [0, 1].map((i) => ({
      sent: after[i].sent - before[i].sent,
      received: after[i].received - before[i].received,
    }));
    // 3 s of 20 ms packets is 150 each way; allow for a slow start on a loaded machine.
    for (const [name, d] of [
      ['alice', da],
      ['bob', db],
    ] as const) {
      assert.ok(d.sent >= 60, `${name} sent ${d.sent} packets to the TURN server\n${alice.out().slice(-2000)}`);
      assert.ok(d.received >= 60, `${name} received ${d.received} packets from the TURN server`);
    }
    await netnsPhoneCommand(lay.net, bob, 'hangup', '');
  });
});
