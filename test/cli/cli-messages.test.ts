/**
 * What the commands say when something is wrong, on the real processes:
 * the README's `SECP2PSIP_LOG=debug` works, every key appears once per log
 * line, a port in use is the same clear exit 2 whichever option named it, a
 * bootstrap address that does not speak TLS and a data directory that cannot
 * be written are each one line with the real cause.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BootstrapProc, startBootstrapProc } from '../secp2psip/procs.ts';
import { freePort } from '../sip/e2e-helpers.ts';
import { type CliRun, runCli } from '../support/cli.ts';
import { isRoot } from '../support/disk.ts';

const CLI = new URL('../../bin/secp2psip.mjs', import.meta.url).pathname;
const plainLines = (r: CliRun) => r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));

/** The CLI as a user that may not write `dir` (root is made `nobody`, since chmod does not stop root). */
function runUnprivileged(args: string[]): Promise<CliRun> {
  const cmd = isRoot ? 'setpriv' : process.execPath;
  const pre = isRoot ? ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath] : [];
  return new Promise((resolve) => {
    const p = spawn(cmd, [...pre, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('command messages', { timeout: 300_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'cli-messages-'));
  let boot: BootstrapProc;
  const holders: Array<Server | Socket> = [];
  before(async () => {
    boot = await startBootstrapProc(join(base, 'boot'));
  });
  after(async () => {
    for (const h of holders) h.close();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('SECP2PSIP_LOG=debug sets the level, and each log line names its component once', async () => {
    const peer = `${'ab'.repeat(20)}@127.0.0.1:9`;
    const r = await runCli(
      [
        'node',
        ...['--sip', '127.0.0.1:0', '--dht', '127.0.0.1:0', '--data', join(base, 'node')],
        ...['--peer', peer, '--setup-period', '1', '--expected-nodes', '3'],
      ],
      // Until the first SETUP is logged (within a second or two; generous for a loaded machine).
      { timeoutMs: 30_000, until: /"level":30[^\n]*"setup done"/, env: { SECP2PSIP_LOG: 'debug' } },
    );
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('{'));
    assert.ok(
      lines.some((l) => JSON.parse(l).level === 20),
      `debug lines are written:\n${r.stderr.slice(-2000)}`,
    );
    const setup = lines.filter((l) => l.includes('"setup done"') && JSON.parse(l).level === 30);
    assert.ok(setup.length > 0, 'a module logging under the command logger (SETUP) is seen');
    for (const l of lines) assert.ok((l.match(/"component":/g) ?? []).length <= 1, l);
    assert.equal(JSON.parse(setup[0]).component, 'whanau-daemon');

    // Generous: on a loaded machine a bootstrap's start (key, registry, TLS listener) can take seconds.
    const quiet = await runCli(['bootstrap', '--listen', '127.0.0.1:0', '--data', join(base, 'quiet')], {
      timeoutMs: 20_000,
      until: /^bootstrap .*\nkey /,
      env: { SECP2PSIP_LOG: 'warn' },
    });
    assert.match(quiet.stdout, /^bootstrap /);
    assert.doesNotMatch(quiet.stderr, /"level":30/, 'no info lines at warn');
    // It exits by itself on the bad level; the limit only bounds a hang (loading alone can take seconds here).
    const bad = await runCli(['bootstrap', '--listen', '127.0.0.1:0', '--data', join(base, 'quiet')], {
      timeoutMs: 30_000,
      env: { SECP2PSIP_LOG: 'loud' },
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /SECP2PSIP_LOG must be one of/);
  });

  it('a ring or SIP port in use: exit 2 with the same clear line', async () => {
    const rpcPort = await freePort();
    const tcp = createServer();
    await new Promise<void>((r) => tcp.listen(rpcPort, '127.0.0.1', r));
    holders.push(tcp);
    const sipPort = await freePort();
    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(sipPort, '127.0.0.1', r));
    holders.push(udp);
    const adapter = (extra: string[], dir: string) =>
      runCli(['adapter', '--bootstrap', boot.spec, '--data', join(base, dir), '--log-level', 'warn', ...extra], {
        timeoutMs: 30_000,
      });
    const rpc = await adapter(['--sip', '127.0.0.1:0', '--rpc', `127.0.0.1:${rpcPort}`], 'rpc-in-use');
    const sip = await adapter(['--sip', `127.0.0.1:${sipPort}`], 'sip-in-use');
    for (const [r, port] of [
      [rpc, rpcPort],
      [sip, sipPort],
    ] as const) {
      assert.equal(r.code, 2, r.stderr);
      const lines = plainLines(r);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0],
        new RegExp(`cannot listen (for SIP )?on 127\\.0\\.0\\.1:${port}: address already in use$`),
      );
    }
  });

  it('a bootstrap address that does not speak TLS: one clear line, no OpenSSL text', async () => {
    const port = await freePort();
    const http = createServer((s) => s.end('HTTP/1.0 200 OK\r\n\r\nhello'));
    await new Promise<void>((r) => http.listen(port, '127.0.0.1', r));
    holders.push(http);
    const hash = boot.spec.split('@')[0];
    for (const spec of [`127.0.0.1:${port}`, `${hash}@127.0.0.1:${port}`]) {
      const r = await runCli(['adapter', '--sip', '127.0.0.1:0', '--bootstrap', spec, '--data', join(base, 'tls')], {
        timeoutMs: 30_000,
      });
      assert.notEqual(r.code, 0);
      const lines = plainLines(r);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], new RegExp(`127\\.0\\.0\\.1:${port}: no TLS answer \\(wrong version number\\)`));
      assert.doesNotMatch(lines[0], /SSL routines|openssl/);
    }
  });

  it('a data directory that cannot be written is reported as such, not as a port problem', async () => {
    const dir = join(base, 'locked');
    mkdirSync(dir);
    chmodSync(base, 0o755);
    chmodSync(dir, 0o555);
    const r = await runUnprivileged(['bootstrap', '--listen', '127.0.0.1:0', '--data', dir]);
    assert.notEqual(r.code, 0, r.stderr);
    const lines = plainLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /node\/identity\.pem: cannot create the key: EACCES/);
    assert.doesNotMatch(lines[0], /cannot listen/);
  });
});
