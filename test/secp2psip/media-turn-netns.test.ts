import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { type NetnsPhone, netnsPhoneCommand, startNetnsPhone, waitForNetnsPhone } from '../support/baresip-netns.ts';
import { ADAPTER_READY, BOOTSTRAP_READY, type NetnsDaemon, startNetnsDaemon } from '../support/netns-daemons.ts';
import { type Host, iptablesUnavailable, Testnet } from '../support/testnet.ts';

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
  let net: Testnet;
  let base = '';
  let hostA: Host;
  let hostB: Host;
  let turnHost: Host;
  let alice: NetnsPhone;
  let bob: NetnsPhone;
  const daemons: NetnsDaemon[] = [];

  /** UDP packets this phone's host sent to / received from the TURN server (iptables counters). */
  async function turnPackets(phone: NetnsPhone): Promise<{ sent: number; received: number }> {
    const { stdout } = await net.exec(phone.host, ['iptables', '-w', '-L', '-v', '-n', '-x']);
    const count = (chain: string) => {
      const part = stdout.split(/^Chain /m).find((c) => c.startsWith(chain)) ?? '';
      const line = part.split('\n').find((l) => l.includes(turnHost.addr));
      return line ? Number(line.trim().split(/\s+/)[0]) : 0;
    };
    return { sent: count('OUTPUT'), received: count('INPUT') };
  }

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-turn-'));
    net = await Testnet.create(5, { prefix: 'sp2tturn' });
    [turnHost, hostA, hostB] = net.hosts;
    const [aliceLan] = await net.addNatLan(net.hosts[3], 1);
    const [bobLan] = await net.addNatLan(net.hosts[4], 1);
    net.spawn(turnHost, [
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
    const boot = await startNetnsDaemon(
      net,
      turnHost,
      ['bootstrap', '--listen', '0.0.0.0:7000', '--data', join(base, 'boot')],
      BOOTSTRAP_READY,
    );
    daemons.push(boot.d);
    for (const [host, dir] of [
      [hostA, 'A'],
      [hostB, 'B'],
    ] as const) {
      const a = await startNetnsDaemon(
        net,
        host,
        [
          'adapter',
          '--sip',
          '0.0.0.0:5060',
          '--bootstrap',
          boot.m[1],
          '--data',
          join(base, dir),
          '--open-registration',
        ],
        ADAPTER_READY,
      );
      daemons.push(a.d);
    }
    const media = {
      modules: ['ausine.so', 'stun.so', 'turn.so'],
      audioSource: 'ausine,440',
      config: ['ausrc_srate 48000', 'ausrc_channels 2'],
      accountParams: `;medianat=turn;stunserver=turn:${turnHost.addr}:3478;stunuser=${TURN_USER};stunpass=${TURN_PASS}`,
    };
    alice = startNetnsPhone(net, aliceLan, base, 'alice', `sip:alice@${hostA.addr}:5060`, media);
    bob = startNetnsPhone(net, bobLan, base, 'bob', `sip:bob@${hostB.addr}:5060`, media);
    for (const p of [alice, bob])
      for (const chain of ['INPUT', 'OUTPUT'])
        await net.exec(p.host, [
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

  after(async () => {
    await net?.destroy();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('alice calls bob; during three seconds of the call RTP flows both ways through the TURN server', async () => {
    await netnsPhoneCommand(net, alice, 'dial', `sip:bob@${hostA.addr}:5060`);
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
    await netnsPhoneCommand(net, bob, 'hangup', '');
  });
});
