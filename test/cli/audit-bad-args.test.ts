/**
 * Every command refuses bad arguments the same way: one line on stderr,
 * nothing on stdout, no stack trace, and a non-zero exit (2 for a bad
 * argument). Commands that would start a daemon must refuse before binding
 * anything.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CliRun, runCli } from '../support/cli.ts';

/** Run at most `limit` programs at once (the CLI takes a second or more to start). */
async function runAll(cases: string[][], limit = 4): Promise<CliRun[]> {
  const out: CliRun[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < cases.length; i = next++) out[i] = await runCli(cases[i], { timeoutMs: 60_000 });
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return out;
}

describe('bad command-line arguments, every command', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'audit-args-'));
  const file = join(dir, 'a-file');
  writeFileSync(file, 'not a directory\n');
  const data = join(dir, 'data');
  after(() => rmSync(dir, { recursive: true, force: true }));

  const boot = ['--listen', '127.0.0.1:0', '--data', data];
  const adapter = ['--sip', '127.0.0.1:0', '--bootstrap', '127.0.0.1:9', '--data', data];
  const node = ['--sip', '127.0.0.1:0', '--dht', '127.0.0.1:0', '--data', data];
  /** [arguments, what the line must say, exit code (2 unless given)] */
  const cases: [string[], RegExp, number?][] = [
    [['bootstrap', '--data', data], /--listen is required/],
    [['bootstrap', '--listen', '127.0.0.1:0'], /--data is required/],
    [['bootstrap', ...boot, '--k', '0'], /--k must be between 1 and 255/],
    [['bootstrap', ...boot, '--k', '7', '--n', '5'], /--k must not exceed --n/],
    [['bootstrap', ...boot, '--ca-bundle', join(dir, 'missing.pem')], /--ca-bundle/],
    [['bootstrap', ...boot, '--ca-bundle', file], /--ca-bundle: no PEM certificate/],
    [['bootstrap', ...boot, '--peer', '127.0.0.1:9'], /--peer needs the peer's key/],
    [['bootstrap', ...boot, '--log-level', 'loud'], /--log-level/],
    [['bootstrap', ...boot, '--bogus'], /unknown option '--bogus'/],
    [
      ['bootstrap', '--listen', '127.0.0.1:0', '--data', file],
      /--data '.*a-file' cannot be used: it is not a directory/,
    ],
    [['adapter', '--sip', '127.0.0.1:0', '--data', data], /--bootstrap is required/],
    [
      ['adapter', ...adapter.slice(0, 2), '--bootstrap', 'nowhere', '--data', data],
      /--bootstrap: bootstrap address must be host:port/,
    ],
    [['adapter', '--sip', 'x', ...adapter.slice(2)], /--sip must be host:port/],
    [['adapter', ...adapter, '--mode', 'open'], /--mode must be signed or protected/],
    [['adapter', ...adapter, '--rebuild', 'fast'], /--rebuild must be robust or seed/],
    [['adapter', ...adapter, '--timeout', '5'], /--timeout must be between/],
    [
      ['adapter', '--sip', '127.0.0.1:0', '--bootstrap', '127.0.0.1:9', '--data', file],
      /--data '.*a-file' cannot be used: it is not a directory/,
    ],
    [['demo', '--calls', 'lots'], /--calls/],
    [['node', ...node, '--bogus'], /unknown option '--bogus'/],
    [['gateway', '--dht', '127.0.0.1:0', '--data', data], /--sip is required/],
    [['sim', 'whanau', '--honest', '100', '--json'], /--attack-edges G is required/],
    [['sim', 'chord', '--lookups', '10', '--json'], /--nodes is required/],
    [['sim', 'bogus'], /unknown simulation 'bogus'/],
    [['registrar', '--listen', 'nowhere'], /--listen must be host:port/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ];

  it(`${cases.length} bad command lines: one line on stderr, nothing on stdout, no stack, non-zero exit`, async () => {
    const runs = await runAll(cases.map(([args]) => args));
    for (const [i, [args, re, code]] of cases.entries()) {
      const r = runs[i];
      const what = `secp2psip ${args.join(' ')}\n${r.stderr}`;
      assert.equal(r.code, code ?? 2, what);
      assert.equal(r.stdout, '', what);
      assert.equal(r.stderr.trim().split('\n').length, 1, what);
      assert.doesNotMatch(r.stderr, /\n\s+at /, what);
      assert.match(r.stderr, re, what);
      assert.match(r.stderr, /^secp2psip( [a-z]+)?: /, what);
      assert.doesNotMatch(r.stderr, /bad command-line argument.*bad command-line argument/, what);
    }
  });
});
