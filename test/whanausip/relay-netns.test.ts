import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.ts';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { countIn, type NetnsPhone, netnsPhoneCommand, startNetnsPhone } from '../support/baresip-netns.ts';
import { type NetnsDaemon, startNetnsDaemon } from '../support/netns-daemons.ts';
import { type Host, iptablesUnavailable, Testnet } from '../support/testnet.ts';

/**
 * WhanauSIP with a node behind a NAT without port forward (docs/design.md "Adapters behind NAT"): alice's node and
 * the gateway on public hosts, bob's node and his phone (baresip) on a LAN behind a MASQUERADE router. Bob's node
 * is not told (no --behind-nat): it asks a friend to dial its DHT address back, learns it cannot be reached, keeps
 * links to its two friends, which relay for it, and is known by them. Nothing
 * can send SIP to it, so the node or gateway that looks bob up carries the call's SIP to his node over the DHT
 * link, and his node carries his calls to alice's node the same way; both stay in the path, so the BYEs follow.
 */
const unavailable = iptablesUnavailable() ?? (haveBinary('baresip') ? undefined : 'baresip is not installed');
const WHANAU_READY = /^hash ([0-9a-f]{40})\n[\s\S]*^sip (sip:\S+)\n[\s\S]*^peer (\S+)\n/m;

describe('WhanauSIP: two nodes and a gateway on three hosts, one node behind a NAT', {
  skip: unavailable ?? false,
  timeout: 300_000,
}, () => {
  let net: Testnet;
  let base = '';
  const hashes: string[] = [];
  const daemons: NetnsDaemon[] = [];
  let aliceNode: Host;
  let gwHost: Host;
  let bobNode: Host;
  let aliceUri = '';
  let bobUri = '';
  let alice: NetnsPhone;
  let bob: NetnsPhone;

  const logs = () =>
    [['alice', alice?.out()], ['bob', bob?.out()], ...daemons.map((d, i) => [['A', 'G', 'B'][i], d.err()])]
      .map(([n, s]) => `--- ${n} ---\n${(s ?? '').slice(-8000)}`)
      .join('\n');

  async function more(phone: NetnsPhone, re: RegExp, n: number, what: string, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (countIn(phone, re) <= n) {
      if (Date.now() > end || phone.proc.exitCode !== null)
        assert.fail(`${phone.name}: ${what} did not happen\n${logs()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

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

  /** `caller` dials `target`; the callee answers and hangs up; its BYE reaches the caller. */
  async function call(caller: NetnsPhone, callee: NetnsPhone, target: string): Promise<void> {
    const up = /Call established/;
    const [atCaller, atCallee, byes] = [countIn(caller, up), countIn(callee, up), countIn(caller, /\nBYE sip:/)];
    await netnsPhoneCommand(net, caller, 'dial', target);
    await more(callee, up, atCallee, 'call established', 40_000);
    await more(caller, up, atCaller, 'call established', 10_000);
    await netnsPhoneCommand(net, callee, 'hangup', '');
    await more(caller, /\nBYE sip:/, byes, 'BYE from the callee', 15_000);
  }

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'whanausip-relay-'));
    net = await Testnet.create(4, { prefix: 'sp2twrly' });
    const names = ['alice', 'gateway', 'bob'];
    for (const n of names) {
      const id = Identity.generate();
      id.save(join(base, n, 'identity.pem'));
      hashes.push(id.id);
    }
    [aliceNode, gwHost] = net.hosts;
    let bobPhoneHost: Host;
    [bobNode, bobPhoneHost] = await net.addNatLan(net.hosts[2], 2);
    const hosts = [aliceNode, gwHost, bobNode];
    const start = (i: number, extra: string[]) =>
      startNetnsDaemon(
        net,
        hosts[i],
        [
          i === 1 ? 'gateway' : 'node',
          ...['--sip', '0.0.0.0:5060', '--dht', '0.0.0.0:7000', '--data', join(base, names[i])],
          ...['--setup-period', '3', '--expected-nodes', '3'],
          ...(i === 1 ? [] : ['--open-registration']),
          // Bob's friends know his hash; the address is his LAN one, which they cannot dial.
          ...names.flatMap((_, j) => (j === i ? [] : ['--peer', `${hashes[j]}@${hosts[j].addr}:7000`])),
          ...extra,
        ],
        WHANAU_READY,
      );
    // Bob's friends first: behind a NAT, his node needs one of them to relay for it.
    for (const i of [0, 1]) daemons.push((await start(i, [])).d);
    const b = await start(2, []);
    daemons.push(b.d);
    assert.match(b.m[3], new RegExp(`^${hashes[2]}@relay:`), 'bob is known by his relays, not his private address');
    // Found by itself: a friend saw his request come from the router's address, not the one he advertises.
    const found = await logLine(b.d, /not reachable from a friend \(dial-back\)/);
    assert.ok(found.includes(`"seenFrom":"${net.hosts[2].addr}:`), `dial-back seen from bob's router: ${found}`);
    await logLine(b.d, /behind a NAT: reachable through social peers relaying for it/);
    // The gateway checked itself too (alice's node, its friend, was up to ask) and stays public.
    await logLine(daemons[1], /DHT address reachable from a friend \(dial-back\)/);
    for (const d of daemons.slice(0, 2)) assert.doesNotMatch(d.err(), /not reachable from a friend/);
    aliceUri = `sip:${hashes[0]}@${aliceNode.addr}:5060`;
    bobUri = `sip:${hashes[2]}@${bobNode.addr}:5060`;
    alice = startNetnsPhone(net, net.hosts[3], base, 'alice-phone', aliceUri);
    bob = startNetnsPhone(net, bobPhoneHost, base, 'bob-phone', bobUri);
    await more(alice, /\{0\/UDP\/v4\} 200 OK/, 0, 'registration', 60_000);
    await more(bob, /\{0\/UDP\/v4\} 200 OK/, 0, 'registration', 60_000);
    // Two SETUPs everywhere after bob's phone registered: every table holds both records.
    const setups = daemons.map((d) => (d.err().match(/"msg":"setup done"/g) ?? []).length);
    const end = Date.now() + 60_000;
    while (daemons.some((d, i) => (d.err().match(/"msg":"setup done"/g) ?? []).length < setups[i] + 2)) {
      if (Date.now() > end) assert.fail(`SETUPs did not finish\n${logs()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  after(async () => {
    await net?.destroy();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it("alice dials bob's hash at the gateway, which carries the call to bob's node over the DHT link", async () => {
    await call(alice, bob, `sip:${hashes[2]}@${gwHost.addr}:5060`);
    assert.match(daemons[1].err(), /INVITE over the DHT link to its node/);
  });

  it("bob, behind the NAT, dials alice's hash at his node, which carries the call to hers", async () => {
    await call(bob, alice, `sip:${hashes[0]}@${bobNode.addr}:5060`);
    assert.match(daemons[2].err(), /INVITE over the DHT link to its node/);
  });

  it("alice dials bob's hash at her own node", async () => {
    await call(alice, bob, `sip:${hashes[2]}@${aliceNode.addr}:5060`);
    assert.match(daemons[0].err(), /INVITE over the DHT link to its node/);
  });
});
