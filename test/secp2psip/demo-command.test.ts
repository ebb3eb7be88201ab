import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../support/cli.ts';

const run = (args: string[], timeoutMs = 120_000) => runCli(args, { timeoutMs, env: { NODE_ENV: 'production' } });

describe('secp2psip demo', { timeout: 150_000 }, () => {
  it('--json: 4 adapters register their users and 4 calls get verified 302s', async () => {
    const r = await run(['demo', '--adapters', '4', '--calls', '4', '--json', '--log-level', 'silent']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, 'exactly one JSON object on stdout');
    const j = JSON.parse(lines[0]);
    assert.equal(j.adapters, 4);
    assert.equal(j.registrations, 4);
    assert.equal(j.calls, 4);
    assert.equal(j.succeeded, 4);
    assert.equal(j.failed, 0);
    assert.equal(typeof j.setupMsP50, 'number');
    assert.ok(j.setupMsP99 >= j.setupMsP50);
    // Both sides verified every call: the callee's adapter the INVITE, the caller's the REDIRECT.
    assert.equal(j.verifiedInvites, 4);
    assert.equal(j.verifiedRedirects, 4);
  });

  for (const [args, re] of [
    [['--adapters', '1'], /--adapters must be between 2 and 200/],
    [['--mode', 'open'], /--mode must be signed or protected/],
    [['--k', '6', '--n', '4'], /--k must not exceed --n/],
    [['--bogus'], /unknown option '--bogus'/],
  ] as const) {
    it(`bad arguments (${args.join(' ')}): one-line error, exit 2`, async () => {
      const r = await run(['demo', ...args, '--json'], 60_000);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, re);
    });
  }
});
