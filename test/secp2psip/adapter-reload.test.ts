/**
 * A running adapter reloads its config file on SIGHUP: a phone's password
 * from `[phone-users]` and its new-name cap change without a restart (a key
 * also given as a flag keeps the flag's value), and the phone's registration stays; a phone user deleted from the
 * file is revoked, one added with --add-user is not touched.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getHeaders } from '../../src/sip/message.ts';
import { runCli } from '../support/cli.ts';
import { SipClient } from '../support/sip-client.ts';
import { type AdapterProc, type BootstrapProc, eventually, startAuthAdapterProc, startBootstrapProc } from './procs.ts';

describe('adapter: SIGHUP reloads phone users and its new-name cap', { timeout: 180_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'secp2psip-adapter-reload-'));
  const config = join(base, 'adapter.toml');
  const data = join(base, 'adapter');
  const file = (lines: string[]) => writeFileSync(config, `role = "adapter"\n${lines.join('\n')}\n`);
  let boot: BootstrapProc;
  let adapter: AdapterProc;
  let phone: SipClient;

  before(async () => {
    boot = await startBootstrapProc(join(base, 'boot'));
    // A user added on the command line: the config file must leave it alone.
    const added = await runCli(['adapter', '--data', data, '--add-user', 'carol', '--password', 'carol-password']);
    assert.equal(added.code, 0, added.stderr);
    file(['log-level = "warn"', '[phone-users]', 'alice = "alice-first"', 'bob = "bob-password"']);
    // The helper gives --log-level on the command line, which wins over the file's: a flag overrides the file.
    adapter = await startAuthAdapterProc(boot.spec, data, '127.0.0.1:0', ['--config', config]);
    phone = await SipClient.open(adapter.sipPort);
  });

  after(async () => {
    phone?.close();
    await adapter?.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  const register = (user: string, contact?: string) => ({
    method: 'REGISTER',
    uri: `sip:${adapter.sip}`,
    from: `sip:${user}@${adapter.sip}`,
    to: `sip:${user}@${adapter.sip}`,
    contact,
    expires: contact ? 600 : undefined,
  });
  const status = async (user: string, password: string, contact?: string) =>
    (await phone.withDigest(register(user, contact), user, password)).final;

  it('a new password applies at once, the registration stays, a deleted user is revoked', async () => {
    const contact = `<sip:alice@127.0.0.1:${phone.port}>`;
    assert.equal((await status('alice', 'alice-first', contact)).status, 200);
    assert.equal((await status('bob', 'bob-password')).status, 200);

    file(['log-level = "debug"', 'new-names-per-minute = 3', '[phone-users]', 'alice = "alice-second"']);
    adapter.proc.kill('SIGHUP');
    await eventually('the reload', () => adapter.stderr().includes('configuration reloaded'), 10_000, adapter.stderr);
    const line = adapter
      .stderr()
      .split('\n')
      .find((l) => l.includes('configuration reloaded'));
    // log-level is not among them: the command line's --log-level info still wins over the file.
    assert.deepEqual((JSON.parse(line ?? '{}') as { applied: string[] }).applied.sort(), [
      'new-names-per-minute',
      'phone-users',
    ]);

    let now = 0;
    for (let i = 0; i < 10 && now !== 200; i++) {
      await new Promise((r) => setTimeout(r, 400));
      now = (await status('alice', 'alice-second')).status;
    }
    assert.equal(now, 200, 'the new password is accepted');
    assert.equal((await status('alice', 'alice-first')).status, 401, 'the old one is refused');
    assert.equal((await status('bob', 'bob-password')).status, 401, 'bob, deleted from the file, is revoked');
    assert.equal((await status('carol', 'carol-password')).status, 200, 'carol, added with --add-user, stays');
    const query = await status('alice', 'alice-second');
    assert.ok(
      getHeaders(query, 'Contact').some((c) => c.includes(`127.0.0.1:${phone.port}`)),
      "alice's registration survived the reload",
    );
    assert.ok(!adapter.stderr().includes('"level":20,'), 'no debug line: the flag kept the level at info');
    await eventually(
      'the auth_failed refusal lines',
      () =>
        adapter
          .stderr()
          .split('\n')
          .filter((l) => l.includes('"reason":"auth_failed"')).length >= 2,
      10_000,
      adapter.stderr,
    );
  });
});
