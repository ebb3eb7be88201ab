import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { type Phone, phoneCommand, registeredPhone, startPhone as startBaresip } from '../support/baresip.ts';
import { runCli } from '../support/cli.ts';
import { type AdapterProc, type BootstrapProc, eventually, startAuthAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * Instant messages from phones with passwords: the adapter challenges a
 * phone's MESSAGE with 407 (RFC 3261 22) like an INVITE, and sends it only as
 * the authenticated user. baresip 1.0 gets MD5 alone (see e2e-baresip-auth).
 */
const skip = haveBinary('baresip') ? false : 'baresip is not installed';
const PASSWORDS: Record<string, string> = { alice: 'alice-pw-0001', bob: 'bob-pw-00002' };

describe('instant messages from phones with digest passwords', { skip, timeout: 240_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  let A: AdapterProc;
  let B: AdapterProc;
  const phones: Phone[] = [];

  async function phone(user: string, adapter: AdapterProc, peer: string): Promise<Phone> {
    const phone = await registeredPhone(
      user,
      () =>
        startBaresip(base, user, `sip:${user}@127.0.0.1:${adapter.sipPort}`, {
          authPass: PASSWORDS[user],
          modules: ['contact.so'],
          contacts: [`<sip:${peer}@127.0.0.1:${adapter.sipPort}>`],
        }),
      adapter.stderr,
    );
    phones.push(phone);
    return phone;
  }

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-im-auth-'));
    boot = await startBootstrapProc(join(base, 'boot'));
    for (const [dir, user] of [
      ['A', 'alice'],
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

  it("alice's MESSAGE is challenged with 407, then delivered to bob's phone as hers", async () => {
    const bob = await phone('bob', B, 'alice');
    const alice = await phone('alice', A, 'bob');
    await phoneCommand(alice, 'message', 'hello with a password');
    await eventually(
      'MESSAGE at bob',
      () => /^MESSAGE sip:[\s\S]*?hello with a password/m.test(bob.out()),
      30_000,
      () => alice.out().slice(-3000) + A.stderr().slice(-2000),
    );
    assert.match(alice.out(), /SIP\/2.0 407 [^\r\n]*[\s\S]*?CSeq: \d+ MESSAGE/);
    assert.match(bob.out(), new RegExp(`^From: <sip:alice@127\\.0\\.0\\.1:${B.sipPort}>`, 'm'));
    await eventually(
      '200 at alice',
      () => /SIP\/2.0 200 OK[\s\S]*?CSeq: \d+ MESSAGE/.test(alice.out()),
      10_000,
      alice.out,
    );
  });
});
