/**
 * The refusal reason codes and the fail2ban filter stay in step: every code
 * the filter names exists, every code a misbehaving client or peer causes is
 * in the filter, and a refusal from an IPv6 source gives fail2ban the address
 * alone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { ERRORS, type ErrorCode } from '../../src/util/errors.ts';
import { logRefusal, REFUSAL_REASONS, refusalReasonOf, splitSource } from '../../src/util/refusal.ts';
import { FAIL2BAN_FILTER, failregexOf } from '../support/fail2ban.ts';

/** Codes that are no fault of the one refused: not banned. */
const NOT_BANNED = ['no_phone_users', 'refused'];

describe('refusal reason codes', () => {
  it('are snake_case, and the filter names exactly the ones a bad client or peer causes', () => {
    const codes = Object.keys(REFUSAL_REASONS);
    for (const c of codes) assert.match(c, /^[a-z]+(_[a-z]+)*$/);
    const conf = readFileSync(FAIL2BAN_FILTER, 'utf8');
    const inFilter = (/^_reasons = (.*)$/m.exec(conf)?.[1] ?? '').split('|');
    assert.deepEqual([...inFilter].sort(), codes.filter((c) => !NOT_BANNED.includes(c)).sort());
  });

  it('every error a bootstrap answers with maps to a known code', () => {
    for (const code of Object.keys(ERRORS) as ErrorCode[])
      assert.ok(Object.hasOwn(REFUSAL_REASONS, refusalReasonOf(code)), code);
    assert.equal(refusalReasonOf('USER_NAME_RATE'), 'name_rate');
    assert.equal(refusalReasonOf('IDENTITY_BAD_SIGNATURE'), 'bad_signature');
  });

  it('splits IPv4 and IPv6 sources into address and port, and the filter takes the address', () => {
    assert.deepEqual(splitSource('192.0.2.7:5060'), { src: '192.0.2.7', srcPort: 5060 });
    assert.deepEqual(splitSource('[2001:db8::7]:7000'), { src: '2001:db8::7', srcPort: 7000 });
    assert.deepEqual(splitSource('somewhere'), { src: 'somewhere' });
    const re = failregexOf();
    const line = (src: string, reason = 'auth_failed') =>
      `{"level":40,"time":1,"component":"adapter","event":"refused","reason":"${reason}","src":"${src}","srcPort":5}`;
    assert.equal(re.exec(line('2001:db8::7'))?.groups?.host, '2001:db8::7');
    assert.equal(re.exec(line('192.0.2.7', 'no_phone_users')), null);
  });

  it('logRefusal writes the fields in the order the filter reads them', () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
    logRefusal(log, 'bad_signature', '[2001:db8::9]:7000', { code: 'IDENTITY_BAD_SIGNATURE' }, 'peer refused');
    assert.equal(lines.length, 1);
    assert.match(lines[0], /"event":"refused","reason":"bad_signature","src":"2001:db8::9","srcPort":7000,/);
    assert.equal(failregexOf().exec(lines[0])?.groups?.host, '2001:db8::9');
  });
});

describe('a flood of refusals', () => {
  it('writes at most 20 lines per source per 10 s, then says how many it held back', () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
    const t0 = 1_000_000;
    for (let i = 0; i < 500; i++) logRefusal(log, 'auth_failed', '198.51.100.9:5060', {}, 'phone refused', t0 + i);
    assert.equal(lines.length, 20, 'a flood is capped');
    // Another source is not silenced by the first one's flood.
    logRefusal(log, 'auth_failed', '198.51.100.10:5060', {}, 'phone refused', t0 + 600);
    assert.equal(lines.length, 21);
    logRefusal(log, 'auth_failed', '198.51.100.9:5060', {}, 'phone refused', t0 + 10_000);
    assert.equal(lines.length, 22);
    assert.match(lines[21], /"src":"198\.51\.100\.9".*"suppressed":480/);
    // Still a line fail2ban counts.
    assert.equal(failregexOf().exec(lines[21])?.groups?.host, '198.51.100.9');
  });
});

describe('the shipped jail', () => {
  const installed =
    existsSync('/etc/fail2ban/jail.conf') &&
    spawnSync('sh', ['-c', 'command -v fail2ban-client'], { stdio: 'ignore' }).status === 0;
  it('passes fail2ban-client --test beside the distribution`s configuration', {
    skip: !installed && 'fail2ban not installed',
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'secp2psip-f2b-'));
    try {
      cpSync('/etc/fail2ban', dir, { recursive: true });
      // Only our jail: the distribution's own (sshd) may need log files this machine lacks.
      rmSync(join(dir, 'jail.d'), { recursive: true, force: true });
      cpSync(join(dirname(FAIL2BAN_FILTER), '..'), dir, { recursive: true });
      const r = spawnSync('fail2ban-client', ['-c', dir, '--test'], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, /configuration test is successful/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
