import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { runCli } from '../support/cli.ts';
import { type LinphonePhone, type LoggedMessage, startLinphone } from '../support/linphone.ts';
import { type AdapterProc, type BootstrapProc, startAuthAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * Linphone over TCP as it comes (liblinphone 5.1, Debian's linphonec): each phone registers from an ephemeral
 * port and, once the 401 tells it `rport`, re-registers with that port as its Contact, where nothing listens.
 * Both adapters stay in the path of such phones (docs/design.md "Phones behind NAT and over TCP"): a call, a
 * hang-up from the callee, and a second call hung up by the caller all succeed, every request reaching each
 * phone over the connection it registered on.
 */
const skip = haveBinary('linphonec') ? false : 'linphonec (Debian package linphone-cli) is not installed';
const PASSWORDS: Record<string, string> = { alice: 'alice-tcp-pw-1', bob: 'bob-tcp-pw-22' };

const callUp = (p: LinphonePhone) => p.callState() === 'StreamsRunning';
const callOver = (p: LinphonePhone) => ['End', 'Released'].includes(p.callState());
const requests = (p: LinphonePhone, method: string): LoggedMessage[] =>
  p.sipMessages().filter((m) => m.head.startsWith(`${method} `));

describe('linphonec over TCP with ephemeral-port contacts through two adapters', { skip, timeout: 180_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  let A: AdapterProc;
  let B: AdapterProc;
  const phones: LinphonePhone[] = [];

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-linphone-tcp-'));
    boot = await startBootstrapProc(join(base, 'boot'));
    for (const [dir, user] of [
      ['A', 'alice'],
      ['B', 'bob'],
    ]) {
      const r = await runCli(['adapter', '--data', join(base, dir), '--add-user', user, '--password', PASSWORDS[user]]);
      assert.equal(r.code, 0, r.stderr);
    }
    [A, B] = await Promise.all([
      startAuthAdapterProc(boot.spec, join(base, 'A')),
      startAuthAdapterProc(boot.spec, join(base, 'B'), '127.0.0.1:0', ['--mode', 'protected']),
    ]);
  });

  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    await A?.stop();
    await B?.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('a call, a hang-up from the callee, and a second call all succeed', async () => {
    const [alice, bob] = await Promise.all(
      (
        [
          ['alice', A],
          ['bob', B],
        ] as const
      ).map(([user, adapter]) =>
        startLinphone(base, { user, registrar: adapter.sip, password: PASSWORDS[user], transport: 'tcp', port: -1 }),
      ),
    );
    phones.push(alice, bob);
    await Promise.all([alice, bob].map((p) => p.until('registration', (q) => q.registration() === 'Ok')));
    // bob's Contact is his connection's ephemeral port (liblinphone's nat helper), not a listening one.
    const ok = bob
      .sipMessages()
      .findLast((m) => m.head.startsWith('SIP/2.0 200 ') && /CSeq: \d+ REGISTER/.test(m.head));
    const contactPort = Number(/^Contact: <sip:bob@127\.0\.0\.1:(\d+);transport=tcp>/m.exec(ok?.head ?? '')?.[1]);
    const rport = Number(/^Via: SIP\/2\.0\/TCP [^\n]*;rport=(\d+)/m.exec(ok?.head ?? '')?.[1]);
    assert.equal(contactPort, rport, ok?.head);

    for (const [round, hangsUp] of [
      [1, bob],
      [2, alice],
    ] as const) {
      const before = bob.callStates().length;
      await alice.command(`call sip:bob@${A.sip}`);
      await bob.until(`call ${round} at bob`, (p) => p.callStates().slice(before).includes('IncomingReceived'));
      assert.match(await bob.command('answer'), /connected/);
      await bob.until(`media at bob, call ${round}`, callUp);
      await alice.until(`media at alice, call ${round}`, callUp);
      assert.match(await hangsUp.command('terminate'), /ended/);
      await alice.until(`the end at alice, call ${round}`, callOver);
      await bob.until(`the end at bob, call ${round}`, callOver);
    }
    // Every request to bob came over the connection he registered on, through his adapter.
    const register = requests(bob, 'REGISTER').find((m) => m.sent);
    for (const m of ['INVITE', 'ACK', 'BYE'].flatMap((x) => requests(bob, x).filter((r) => !r.sent)))
      assert.equal(m.channel, register?.channel, `${m.head.split('\n')[0]} over bob's registration connection`);
    // The callee's BYE (call 1) reached alice over her own connection to her adapter.
    const byeAtAlice = requests(alice, 'BYE').find((m) => !m.sent);
    assert.equal(byeAtAlice?.peer, `TCP://${A.sip}`);
  });
});
