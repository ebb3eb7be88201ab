/**
 * SIGHUP on a real daemon process (`secp2psip node --config FILE`): the log
 * level and a phone's password change in the file, the daemon applies both
 * without a restart, the phone's registration survives, and a change that
 * needs a restart (the SIP address) is logged and ignored. The refusals it
 * logs on the way (a wrong password) are what the fail2ban filter under
 * examples/fail2ban/ must match, with fail2ban-regex itself where installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getHeaders } from '../../src/sip/message.ts';
import { parseArgs } from '../../src/util/args.ts';
import { holdSighupWhileStarting, reloadOnSighup } from '../../src/util/reload.ts';
import { pino } from 'pino';
import { FAIL2BAN_FILTER, failregexOf } from '../support/fail2ban.ts';
import { startRegistrar, stop } from '../sip/e2e-helpers.ts';
import { SipClient } from '../support/sip-client.ts';
import { type CliProcess, startCli, stopCli } from '../whanausip/cli-process.ts';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SIGHUP reload of a running node', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'secp2psip-reload-'));
  const config = join(dir, 'node.toml');
  const file = (level: string, password: string, sip = '127.0.0.1:0') =>
    writeFileSync(
      config,
      [
        'role = "node"',
        `sip = "${sip}"`,
        'dht = "127.0.0.1:0"',
        `data = "${join(dir, 'data')}"`,
        'setup-period = 3600',
        `log-level = "${level}"`,
        '[phone-users]',
        `phone = "${password}"`,
        '',
      ].join('\n'),
    );
  let node: CliProcess;
  let hash = '';
  let sipPort = 0;
  let phone: SipClient;

  before(async () => {
    file('warn', 'first-password');
    node = await startCli('node', ['--config', config], 60_000, false);
    hash = node.hash;
    sipPort = node.sipPort;
    phone = await SipClient.open(sipPort);
  });

  after(async () => {
    phone?.close();
    await stopCli(node);
    rmSync(dir, { recursive: true, force: true });
  });

  const register = (contact?: string) => ({
    method: 'REGISTER',
    uri: `sip:127.0.0.1:${sipPort}`,
    from: `sip:${hash}@127.0.0.1:${sipPort}`,
    to: `sip:${hash}@127.0.0.1:${sipPort}`,
    contact,
    expires: contact ? 600 : undefined,
  });
  const lines = () =>
    node
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('changes the log level and a phone password, keeps the registration, ignores the address change', async () => {
    const contact = `<sip:${hash}@127.0.0.1:${phone.port}>`;
    const first = await phone.withDigest(register(contact), 'phone', 'first-password');
    assert.equal(first.final.status, 200, 'registered with the password of the file');
    const wrong = await phone.withDigest(register(contact), 'phone', 'second-password');
    assert.equal(wrong.final.status, 401);
    assert.ok(!lines().some((l) => l.level === 30), 'warn level: no info line yet');
    assert.ok(
      lines().some((l) => /holds phone passwords and others may read it: chmod 600/.test(String(l.msg))),
      'a world-readable file with passwords is warned about',
    );

    file('info', 'second-password', '127.0.0.1:1');
    node.proc.kill('SIGHUP');
    for (let i = 0; i < 50 && !node.stderr().includes('configuration reloaded'); i++) await wait(100);
    const reloaded = lines().find((l) => l.event === 'reload' && String(l.msg).startsWith('configuration reloaded'));
    assert.ok(reloaded, `reload logged at info, the new level: ${node.stderr()}`);
    assert.deepEqual(reloaded.applied, ['log-level', 'phone-users']);
    assert.deepEqual(reloaded.ignored, ['sip']);
    assert.ok(lines().some((l) => l.key === 'sip' && /needs a restart/.test(String(l.msg))));
    assert.equal(node.proc.exitCode, null, 'still running');

    // The daemon re-reads its phone users within a second of the file changing.
    let status = 0;
    for (let i = 0; i < 10 && status !== 200; i++) {
      await wait(400);
      status = (await phone.withDigest(register(), 'phone', 'second-password')).final.status;
    }
    assert.equal(status, 200, 'the new password is accepted');
    const old = await phone.withDigest(register(), 'phone', 'first-password');
    assert.equal(old.final.status, 401, 'the old password is refused');
    // A REGISTER without Contact lists the bindings (RFC 3261 10.2.3): the phone's one made before the reload.
    const query = await phone.withDigest(register(), 'phone', 'second-password');
    assert.equal(query.final.status, 200);
    assert.ok(
      getHeaders(query.final, 'Contact').some((c) => c.includes(`127.0.0.1:${phone.port}`)),
      'the registration survived the reload',
    );
  });

  it('a file broken on disk is logged at SIGHUP and changes nothing', async () => {
    writeFileSync(config, 'role = "node"\nlog-level = "loud"\n');
    node.proc.kill('SIGHUP');
    for (let i = 0; i < 50 && !node.stderr().includes('configuration not reloaded'); i++) await wait(100);
    const bad = lines().find((l) => String(l.msg).startsWith('configuration not reloaded'));
    assert.ok(bad, node.stderr());
    assert.match(String(bad.err), /node\.toml: key 'log-level': must be one of/);
    const still = await phone.withDigest(register(), 'phone', 'second-password');
    assert.equal(still.final.status, 200);
  });

  it('refusals carry a stable reason code and the source address, and the fail2ban filter matches only them', () => {
    const refused = lines().filter((l) => l.event === 'refused');
    assert.ok(refused.length >= 2, 'two wrong passwords were refused');
    for (const r of refused) {
      assert.equal(r.reason, 'auth_failed');
      assert.equal(r.src, '127.0.0.1');
      assert.equal(r.srcPort, phone.port);
      assert.equal(r.user, 'phone');
    }
    const re = failregexOf();
    const raw = node
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    const bad = raw.filter((l) => l.includes('"event":"refused"'));
    const normal = raw.filter((l) => !l.includes('"event":"refused"'));
    assert.ok(normal.length >= 3);
    for (const l of bad) assert.equal(re.exec(l)?.groups?.host, '127.0.0.1', l);
    for (const l of normal) assert.equal(re.exec(l), null, l);
  });

  it('fail2ban-regex, where installed, finds the refusals and nothing else', (t) => {
    if (spawnSync('sh', ['-c', 'command -v fail2ban-regex'], { stdio: 'ignore' }).status !== 0) {
      t.skip('fail2ban-regex not installed (Debian package fail2ban)');
      return;
    }
    const raw = node
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    const bad = raw.filter((l) => l.includes('"event":"refused"'));
    const log = join(dir, 'daemon.log');
    writeFileSync(log, `${raw.join('\n')}\n`);
    const r = spawnSync('fail2ban-regex', ['--print-all-matched', log, FAIL2BAN_FILTER], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lineCount = /Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed/.exec(r.stdout);
    assert.ok(lineCount, r.stdout);
    assert.equal(Number(lineCount[1]), raw.length);
    assert.equal(Number(lineCount[3]), bad.length, r.stdout);
    assert.match(r.stdout, /127\.0\.0\.1/);
    // Every line's time is read by the filter's datepattern (pino's epoch milliseconds).
    assert.match(r.stdout, new RegExp(`\\[${raw.length}\\] "time":\\{LEPOCH\\}`));
  });
});

describe('SIGHUP to a daemon started without --config', { timeout: 60_000 }, () => {
  it('is logged and changes nothing: the daemon keeps answering', async () => {
    const r = await startRegistrar();
    try {
      r.proc.kill('SIGHUP');
      for (let i = 0; i < 50 && !r.stderr().includes('nothing to reload'); i++) await wait(100);
      assert.match(r.stderr(), /SIGHUP: started without --config, nothing to reload/);
      const c = await SipClient.open(r.port);
      try {
        const aor = `sip:alice@127.0.0.1:${r.port}`;
        const ok = await c.request({ method: 'REGISTER', uri: `sip:127.0.0.1:${r.port}`, from: aor, to: aor });
        assert.equal(ok.status, 200, 'still answering after SIGHUP');
      } finally {
        c.close();
      }
      assert.equal(r.proc.exitCode, null);
    } finally {
      await stop(r);
    }
  });
});

describe('reloadOnSighup (in process)', () => {
  it('a SIGHUP that came while the daemon was starting is applied once it is up', async () => {
    const { SPEC } = await import('../../src/cli/commands/registrar.ts');
    const dir = mkdtempSync(join(tmpdir(), 'secp2psip-early-hup-'));
    try {
      const path = join(dir, 'registrar.toml');
      writeFileSync(path, 'role = "registrar"\nmax-expires = 3600\n');
      const argv = ['--config', path];
      const args = parseArgs(argv, SPEC);
      holdSighupWhileStarting();
      process.emit('SIGHUP', 'SIGHUP');
      writeFileSync(path, 'role = "registrar"\nmax-expires = 600\nmin-expires = 30\n');
      const lines: string[] = [];
      const log = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
      let applied = '';
      const r = reloadOnSighup(args, {
        argv,
        spec: SPEC,
        role: 'registrar',
        log,
        appliers: { 'max-expires': (next) => (applied = String(next['max-expires'])) },
      });
      r.close();
      assert.equal(applied, '600');
      const done = JSON.parse(lines.find((l) => l.includes('configuration reloaded')) ?? '{}');
      assert.deepEqual(done.applied, ['max-expires']);
      assert.deepEqual(done.ignored, ['min-expires']);
      assert.equal(process.listenerCount('SIGHUP'), 0, 'no handler left behind');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
