import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { runCli } from '../support/cli.ts';
import { type Phone, phoneCommand, registeredPhone, startPhone as startBaresip } from '../support/baresip.ts';
import { type AdapterProc, type BootstrapProc, eventually, startAuthAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * Real phones with passwords: baresip accounts with `auth_pass` register with
 * adapters that require digest authentication (401 on REGISTER, 407 on
 * INVITE and on the INVITE they relay as outbound proxy), then call each
 * other through two adapters. Debian's baresip 1.0 (libre before 2.x) stops
 * at a SHA-256 challenge instead of trying the MD5 one after it, so these
 * adapters offer MD5 alone (`--digest MD5`).
 */
const skip = haveBinary('baresip') ? false : 'baresip is not installed';
const PASSWORDS: Record<string, string> = { alice: 'alice-pw-0001', bob: 'bob-pw-00002', carol: 'carol-pw-003' };

function startPhone(base: string, user: string, adapter: AdapterProc, outboundProxy = false): Promise<Phone> {
  return registeredPhone(
    user,
    () =>
      startBaresip(base, user, `sip:${user}@127.0.0.1:${adapter.sipPort}`, {
        outboundProxy: outboundProxy ? `sip:127.0.0.1:${adapter.sipPort}` : undefined,
        localTimeoutS: 30,
        authPass: PASSWORDS[user],
      }),
    adapter.stderr,
  );
}

const established = (p: Phone) => () => /Call established/.test(p.out());

describe('baresip with digest passwords through two adapters', { skip, timeout: 240_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  let A: AdapterProc;
  let B: AdapterProc;
  const phones: Phone[] = [];

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-baresip-auth-'));
    boot = await startBootstrapProc(join(base, 'boot'));
    for (const [dir, user] of [
      ['A', 'alice'],
      ['A', 'carol'],
      ['B', 'bob'],
    ]) {
      const r = await runCli(['adapter', '--data', join(base, dir), '--add-user', user, '--password', PASSWORDS[user]]);
      assert.equal(r.code, 0, r.stderr);
    }
    [A, B] = await Promise.all([
      startAuthAdapterProc(boot.spec, join(base, 'A'), '127.0.0.1:0', ['--digest', 'MD5']),
      startAuthAdapterProc(boot.spec, join(base, 'B'), '127.0.0.1:0', ['--digest', 'MD5']),
    ]);
  });

  after(async () => {
    for (const p of phones) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    await A?.stop();
    await B?.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('alice registers after a 401 and calls bob after a 407; bob answers her phone', async () => {
    const bob = await startPhone(base, 'bob', B);
    const alice = await startPhone(base, 'alice', A);
    phones.push(bob, alice);
    assert.match(alice.out(), /SIP\/2.0 401 Unauthorized/);
    await phoneCommand(alice, 'dial', `sip:bob@127.0.0.1:${A.sipPort}`);
    await eventually('call establishment at bob', established(bob), 30_000, () => alice.out() + bob.out());
    await eventually('call establishment at alice', established(alice), 10_000, alice.out);
    assert.match(alice.out(), /SIP\/2.0 407 Proxy Authentication Required/);
    assert.match(alice.out(), /Proxy-Authorization: Digest [^\r\n]*username="alice"/);
    assert.match(A.stderr(), /verified bob's REDIRECT; sending 302/);
  });

  it('with her adapter as outbound proxy, the relayed INVITE is authenticated too and answered', async () => {
    const carol = await startPhone(base, 'carol', A, true);
    phones.push(carol);
    await phoneCommand(carol, 'dial', `sip:bob@127.0.0.1:${A.sipPort}`);
    await eventually('call establishment at carol', established(carol), 30_000, carol.out);
    assert.equal((carol.out().match(/SIP\/2.0 302 /g) ?? []).length, 1, 'exactly one 302');
  });
});
