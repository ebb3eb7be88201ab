/**
 * A running bootstrap reloads its config file on SIGHUP: the new-name rate
 * and whether new names need an enrolment token change at once, while the
 * names it bound stay bound (their phones re-register). Each refusal of the
 * adapter on the way is logged with its reason code and source address, and
 * the fail2ban filter matches those lines.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { failregexOf } from '../support/fail2ban.ts';
import { SipBurst } from '../support/sip-burst.ts';
import { type AdapterProc, type BootstrapProc, eventually, startAdapterProc, startBootstrapProc } from './procs.ts';

describe('bootstrap: SIGHUP reloads the new-name limits and enrolment', { timeout: 180_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'secp2psip-boot-reload-'));
  const config = join(base, 'bootstrap.toml');
  const file = (lines: string[]) => writeFileSync(config, `role = "bootstrap"\n${lines.join('\n')}\n`);
  let boot: BootstrapProc;
  let adapter: AdapterProc;
  let phone: SipBurst;

  before(async () => {
    file(['new-names-per-minute = 1']);
    boot = await startBootstrapProc(join(base, 'boot'), '127.0.0.1:0', ['--config', config]);
    // The adapter does not cap itself: the bootstrap's limit is the one under test.
    adapter = await startAdapterProc(boot.spec, join(base, 'adapter'), '127.0.0.1:0', ['--new-names-per-minute', '0']);
    phone = await SipBurst.open(adapter.sip);
  });

  after(async () => {
    phone?.close();
    await adapter?.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  const register = (user: string) =>
    phone.send({ method: 'REGISTER', uri: `sip:${adapter.sip}`, from: user, headers: [] }, 30_000);
  const refusals = () =>
    boot
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"event":"refused"'));
  const hup = async (lines: string[]) => {
    const before = boot.stderr().split('configuration reloaded').length;
    file(lines);
    boot.proc.kill('SIGHUP');
    await eventually(
      'the reload',
      () => boot.stderr().split('configuration reloaded').length > before,
      10_000,
      boot.stderr,
    );
  };

  it('a raised rate admits the name the old one refused; requiring tokens refuses the next', async () => {
    assert.equal((await register('first'))?.status, 200);
    const limited = await register('second');
    assert.equal(limited?.status, 503, 'one new name per minute');
    // Logged asynchronously: the line may follow the answer by a moment.
    const refusedFor = (reason: string) =>
      refusals().some((l) => {
        const r = JSON.parse(l) as Record<string, unknown>;
        return r.reason === reason && r.src === '127.0.0.1';
      });
    await eventually('the name_rate refusal line', () => refusedFor('name_rate'), 10_000, boot.stderr);

    await hup(['new-names-per-minute = 100']);
    assert.match(boot.stderr(), /"applied":\["new-names-per-minute"\]/);
    assert.equal((await register('second'))?.status, 200, 'the raised rate applies at once');

    await hup(['new-names-per-minute = 100', 'require-invite = true']);
    const closed = await register('third');
    assert.equal(closed?.status, 403, 'new names now need an enrolment token');
    await eventually('the invite_invalid refusal line', () => refusedFor('invite_invalid'), 10_000, boot.stderr);
    // Bound names are not new: their phones re-register as before.
    assert.equal((await register('first'))?.status, 200);
    assert.equal(boot.proc.exitCode, null);
  });

  it('the fail2ban filter matches every peer refusal, with its address', () => {
    const re = failregexOf();
    const lines = boot
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    const bad = refusals();
    assert.ok(bad.length >= 2);
    for (const l of bad) assert.equal(re.exec(l)?.groups?.host, '127.0.0.1', l);
    for (const l of lines) if (!bad.includes(l)) assert.equal(re.exec(l), null, l);
  });
});
