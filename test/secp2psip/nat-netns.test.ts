import assert from 'node:assert/strict';
import { once } from 'node:events';
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
import { type NetnsDaemon, startNetnsDaemon } from '../support/netns-daemons.ts';
import { type Host, iptablesUnavailable, Testnet } from '../support/testnet.ts';

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

type Daemon = NetnsDaemon;

describe('phones behind NAT, daemons bound to wildcards on three hosts', {
  skip: unavailable ?? false,
  timeout: 240_000,
}, () => {
  let net: Testnet;
  let base = '';
  const daemons: Daemon[] = [];
  let boot: Host;
  let hostA: Host;
  let hostB: Host;
  let adapterA: Daemon;
  let adapterB: Daemon;
  let alice: NetnsPhone;
  let bob: NetnsPhone;
  let aliceLan: Host;
  /** A second host on alice's LAN, for an adapter behind her NAT. */
  let homeAdapter: Host;
  let bootSpec = '';

  const daemon = async (host: Host, args: string[], ready: RegExp) => {
    const r = await startNetnsDaemon(net, host, args, ready);
    daemons.push(r.d);
    return r;
  };

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-nat-'));
    net = await Testnet.create(5, { prefix: 'sp2tnat' });
    [boot, hostA, hostB] = net.hosts;
    [aliceLan, homeAdapter] = await net.addNatLan(net.hosts[3], 2);
    const [bobLan] = await net.addNatLan(net.hosts[4], 1);
    const b = await daemon(
      boot,
      ['bootstrap', '--listen', '0.0.0.0:7000', '--data', join(base, 'boot')],
      /^bootstrap (\S+)\n/m,
    );
    const spec = b.m[1];
    bootSpec = spec;
    // A wildcard is never advertised: the spec names the host's own address.
    assert.equal(spec.split('@')[1], `${boot.addr}:7000`);
    const start = (host: Host, dir: string, mode: string) =>
      daemon(
        host,
        [
          'adapter',
          '--sip',
          '0.0.0.0:5060',
          '--bootstrap',
          spec,
          '--data',
          join(base, dir),
          '--open-registration',
        ].concat(['--mode', mode]),
        /^adapter sip:(\S+)\nring \S+ (\S+)\n/m,
      );
    const a = await start(hostA, 'A', 'signed');
    const bb = await start(hostB, 'B', 'protected');
    adapterA = a.d;
    adapterB = bb.d;
    assert.deepEqual([a.m[1], a.m[2].split(':')[0]], [`${hostA.addr}:5060`, hostA.addr]);
    assert.deepEqual([bb.m[1], bb.m[2].split(':')[0]], [`${hostB.addr}:5060`, hostB.addr]);
    alice = startNetnsPhone(net, aliceLan, base, 'alice', `sip:alice@${hostA.addr}:5060`);
    bob = startNetnsPhone(net, bobLan, base, 'bob', `sip:bob@${hostB.addr}:5060`);
    await waitForNetnsPhone('registration', alice, /alice@.*200 OK/, 60_000);
    await waitForNetnsPhone('registration', bob, /bob@.*200 OK/, 60_000);
  });

  after(async () => {
    await net?.destroy();
    if (base) rmSync(base, { recursive: true, force: true });
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

  it('an adapter behind a NAT detects it by dial-back and refuses to join the ring, naming what to do', async () => {
    const proc = net.spawn(homeAdapter, [
      process.execPath,
      'bin/secp2psip.mjs',
      'adapter',
      '--sip',
      '0.0.0.0:5060',
      '--bootstrap',
      bootSpec,
      '--data',
      join(base, 'home'),
      '--open-registration',
    ]);
    let err = '';
    proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    const [code] = (await once(proc, 'exit')) as [number | null];
    assert.notEqual(code, 0);
    const last = err.trim().split('\n').at(-1) ?? '';
    assert.match(last, new RegExp(`ring address ${homeAdapter.addr.replaceAll('.', '\\.')}:\\d+ cannot be dialled`));
    assert.match(last, new RegExp(`sees this adapter at ${net.hosts[3].addr.replaceAll('.', '\\.')}:`));
    assert.match(last, /--advertise-rpc/);
  });
});
