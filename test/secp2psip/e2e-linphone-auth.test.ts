import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type LinphoneOptions, type LinphonePhone, type LoggedMessage, startLinphone } from '../support/linphone.ts';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { type Phone as Baresip, startPhone as startBaresip, waitForPhone } from '../support/baresip.ts';
import { runCli } from '../support/cli.ts';
import { type AdapterProc, type BootstrapProc, startAuthAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * Real phones with passwords, the second client of the hardening issue:
 * Debian's linphonec (liblinphone 5.1) registers with adapters that require
 * digest authentication and calls through them. Adapter A offers SHA-256
 * then MD5 (RFC 8760; liblinphone picks SHA-256), adapter B MD5 alone, so
 * both algorithms are exercised. A's phones call B's through the ring: the
 * caller's phone gets a 302 and sends the new INVITE through its adapter
 * (liblinphone routes everything through its registrar), answering a 407
 * each time.
 *
 * A TCP phone whose Contact is its connection's ephemeral port (liblinphone's
 * default) is reached over that connection, and its adapter stays in the
 * call's path (Record-Route): the ACK of a 2xx and the BYE go through it.
 */
const skip = haveBinary('linphonec') ? false : 'linphonec (Debian package linphone-cli) is not installed';
const PASSWORDS: Record<string, string> = {
  alice: 'alice-pw-0001',
  carol: 'carol-pw-003',
  bob: 'bob-pw-00002',
  dave: 'dave-pw-0004',
  erin: 'erin-pw-0005',
};

const isResponseTo = (method: string) => (m: LoggedMessage) =>
  m.head.startsWith('SIP/2.0 ') && new RegExp(`^CSeq: \\d+ ${method}$`, 'm').test(m.head);

/** Status lines of the responses to `method` a phone received, in order. */
function responses(phone: LinphonePhone, method: string): string[] {
  return phone
    .sipMessages()
    .filter(isResponseTo(method))
    .map((m) => m.head.split('\n')[0]);
}

/** The requests of `method` a phone sent or received, in order. */
function requests(phone: LinphonePhone, method: string): LoggedMessage[] {
  return phone.sipMessages().filter((m) => m.head.startsWith(`${method} `));
}

const callUp = (p: LinphonePhone) => p.callState() === 'StreamsRunning';
const callOver = (p: LinphonePhone) => ['End', 'Released'].includes(p.callState());

describe('linphonec with digest passwords through two adapters', { skip, timeout: 180_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  let A: AdapterProc;
  let B: AdapterProc;
  const phones: LinphonePhone[] = [];
  const baresips: Baresip[] = [];
  let alice: LinphonePhone;
  let bob: LinphonePhone;
  let carol: LinphonePhone;

  async function phone(user: string, adapter: AdapterProc, opts: Partial<LinphoneOptions> = {}) {
    const p = await startLinphone(base, { user, registrar: adapter.sip, password: PASSWORDS[user], ...opts });
    phones.push(p);
    return p;
  }
  const registered = (p: LinphonePhone) => p.until('registration', (q) => q.registration() === 'Ok');

  /** `caller` dials `callee` at the caller's adapter; the callee answers; both see the media up; the caller hangs up. */
  async function callAndHangUp(caller: LinphonePhone, callee: LinphonePhone, via: AdapterProc) {
    const before = callee.callStates().length;
    await caller.command(`call sip:${callee.user}@${via.sip}`);
    await callee.until('the incoming call', (p) => p.callStates().slice(before).includes('IncomingReceived'));
    assert.match(await callee.command('answer'), /connected/);
    await callee.until('media at the callee', callUp);
    await caller.until('media at the caller', callUp);
    assert.match(await caller.command('terminate'), /ended/);
    await callee.until('the hang-up at the callee', callOver);
    await caller.until('the end at the caller', callOver);
  }

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-linphone-auth-'));
    boot = await startBootstrapProc(join(base, 'boot'));
    for (const [dir, user] of [
      ['A', 'alice'],
      ['A', 'carol'],
      ['B', 'bob'],
      ['B', 'dave'],
      ['B', 'erin'],
    ]) {
      const r = await runCli(['adapter', '--data', join(base, dir), '--add-user', user, '--password', PASSWORDS[user]]);
      assert.equal(r.code, 0, r.stderr);
    }
    [A, B] = await Promise.all([
      startAuthAdapterProc(boot.spec, join(base, 'A')),
      startAuthAdapterProc(boot.spec, join(base, 'B'), '127.0.0.1:0', ['--digest', 'MD5']),
    ]);
  });

  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    for (const p of baresips) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    await A?.stop();
    await B?.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('alice (SHA-256) and bob (MD5) register after a 401; alice calls bob, bob answers, alice hangs up', async () => {
    [alice, bob] = await Promise.all([phone('alice', A), phone('bob', B)]);
    await Promise.all([registered(alice), registered(bob)]);
    for (const [p, algorithm] of [
      [alice, 'SHA-256'],
      [bob, 'MD5'],
    ] as const) {
      assert.deepEqual(responses(p, 'REGISTER').slice(0, 2), ['SIP/2.0 401 Unauthorized', 'SIP/2.0 200 OK']);
      const [first, second] = requests(p, 'REGISTER').map((m) => m.head);
      assert.doesNotMatch(first, /^Authorization:/m);
      assert.match(second, new RegExp(`^Authorization: +Digest .*algorithm=${algorithm},.*username="${p.user}"`, 'm'));
    }
    await callAndHangUp(alice, bob, A);
    assert.ok(responses(alice, 'INVITE').includes('SIP/2.0 407 Proxy Authentication Required'));
    assert.ok(responses(alice, 'INVITE').some((s) => s.startsWith('SIP/2.0 302 ')));
    assert.match(A.stderr(), /verified bob's REDIRECT; sending 302/);
  });

  it('a linphonec with a wrong password is refused and changes nothing', async () => {
    const impostor = await phone('bob', B, { password: 'not-bobs-password', wavFiles: false });
    await impostor.until('the refusal', (p) => p.registration() === 'Failed' && p.passwordPrompted());
    const statuses = responses(impostor, 'REGISTER');
    assert.ok(statuses.length >= 2, statuses.join('\n'));
    assert.ok(
      statuses.every((s) => s === 'SIP/2.0 401 Unauthorized'),
      statuses.join('\n'),
    );
    assert.match(requests(impostor, 'REGISTER')[1].head, /^Authorization: +Digest .*username="bob"/m);
    // bob's binding is untouched: a call for bob still rings his phone, never the impostor's.
    await callAndHangUp(alice, bob, A);
    assert.deepEqual(requests(impostor, 'INVITE'), []);
    assert.equal(impostor.registration(), 'Failed');
  });

  it('over TCP: carol registers from an ephemeral port, dave from his listening port; carol calls dave', async () => {
    // carol: liblinphone's default, a Contact rewritten to the connection's
    // source port once the 401 tells her `rport`; nobody listens there.
    carol = await phone('carol', A, { transport: 'tcp', port: -1 });
    // dave: the Contact keeps his listening port, so another host can open a connection to it.
    const dave = await phone('dave', B, { transport: 'tcp', natHelper: false });
    await Promise.all([registered(carol), registered(dave)]);

    const listening = Number(/Random TCP port is (\d+)/.exec(carol.log())?.[1]);
    const ok = carol.sipMessages().find((m) => m.head.startsWith('SIP/2.0 200 ') && isResponseTo('REGISTER')(m));
    assert.ok(ok, 'a 200 to the REGISTER');
    const rport = Number(/^Via: SIP\/2\.0\/TCP [^\n]*;rport=(\d+)/m.exec(ok.head)?.[1]);
    const contactPort = Number(/^Contact: <sip:carol@127\.0\.0\.1:(\d+);transport=tcp>/m.exec(ok.head)?.[1]);
    assert.ok(listening > 0 && rport > 0, ok.head);
    assert.equal(contactPort, rport, 'the registered Contact is the TCP connection source port');
    assert.notEqual(contactPort, listening);
    const daveOk = dave.sipMessages().find((m) => m.head.startsWith('SIP/2.0 200 ') && isResponseTo('REGISTER')(m));
    const davePort = Number(/^Contact: <sip:dave@127\.0\.0\.1:(\d+);transport=tcp>/m.exec(daveOk?.head ?? '')?.[1]);
    assert.equal(
      davePort,
      Number(/Creating listening point \S+ on \[sip:127\.0\.0\.1:(\d+);transport=TCP\]/.exec(dave.log())?.[1]),
    );

    // carol's INVITE, ACK and BYE go out over her registration connection: her Contact is an ephemeral port
    // nobody could reach, so her adapter record-routes her calls and stays in their path.
    await callAndHangUp(carol, dave, A);
    assert.match(A.stderr(), /verified dave's REDIRECT; sending 302/);
    const invites = requests(carol, 'INVITE');
    assert.ok(invites.length >= 2 && invites.every((m) => m.sent && m.peer === `TCP://${A.sip}`));
    for (const method of ['ACK', 'BYE'])
      assert.ok(
        requests(carol, method).some((m) => m.sent && m.peer === `TCP://${A.sip}`),
        `carol's ${method} through her adapter`,
      );
  });

  it("carol's ephemeral binding is used: a call for her comes over her own connection, and she declines it", async () => {
    const before = carol.callStates().length;
    const callerBefore = alice.callStates().length;
    await alice.command(`call sip:carol@${A.sip}`);
    await carol.until('the incoming call', (p) => p.callStates().slice(before).includes('IncomingReceived'));
    const register = requests(carol, 'REGISTER').find((m) => m.sent);
    const invite = requests(carol, 'INVITE').findLast((m) => !m.sent);
    assert.ok(register?.channel && invite, 'the REGISTER and the INVITE in the log');
    assert.equal(invite.channel, register.channel, 'the INVITE came over the connection carol registered on');
    assert.equal(invite.peer, `TCP://${A.sip}`);
    // A decline is a final non-2xx: it and its ACK travel hop by hop, through the adapter that holds her connection.
    await carol.command('terminate');
    await alice.until('the refusal at the caller', (p) => p.callStates().slice(callerBefore).includes('Released'));
    assert.ok(!alice.callStates().slice(callerBefore).includes('StreamsRunning'));
    assert.match(responses(alice, 'INVITE').at(-1) ?? '', /^SIP\/2\.0 (486|603) /);
  });

  const noBaresip = haveBinary('baresip') ? false : 'baresip is not installed';
  it('alice calls erin, a baresip phone with a password on the other adapter; erin answers, alice hangs up', {
    skip: noBaresip,
  }, async () => {
    const erin = await startBaresip(base, 'erin', `sip:erin@${B.sip}`, { authPass: PASSWORDS.erin });
    baresips.push(erin);
    await waitForPhone('registration', erin, /erin@127\.0\.0\.1.*200 OK/, 30_000);
    const before = alice.callStates().length;
    await alice.command(`call sip:erin@${A.sip}`);
    await waitForPhone('the call', erin, /Call established/, 30_000);
    await alice.until('media at the caller', callUp);
    assert.ok(alice.callStates().slice(before).includes('StreamsRunning'));
    assert.match(await alice.command('terminate'), /ended/);
    await waitForPhone('the hang-up', erin, /BYE sip:erin[^@\s]*@[\s\S]*session closed/, 10_000);
    await alice.until('the end at the caller', callOver);
    assert.match(A.stderr(), /verified erin's REDIRECT; sending 302/);
  });
});
