import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseListenOption, parseOpsOptions, readTokenFile, startOps } from '../../src/ops/ops-options.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { runCli } from '../support/cli.ts';

const badArgument = (e: unknown) => isOverlayError(e, 'BAD_ARGUMENT');

describe('--metrics, --http and --admin-token-file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ops-options-'));
  let busy: Server;
  let busyPort = 0;

  before(async () => {
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    busyPort = (busy.address() as { port: number }).port;
  });

  after(() => {
    busy.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a bare port listens on loopback; host:port as given', () => {
    assert.deepEqual(parseListenOption('9464', '--metrics'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseListenOption('[::1]:9464', '--metrics'), { host: '::1', port: 9464 });
    assert.deepEqual(parseListenOption('0.0.0.0:80', '--http'), { host: '0.0.0.0', port: 80 });
    assert.throws(() => parseListenOption('70000', '--metrics'), badArgument);
    assert.throws(() => parseListenOption('localhost', '--http'), /--http must be host:port/);
  });

  it('a token file must hold a real token; administration needs --http', () => {
    writeFileSync(join(dir, 'short'), 'abc\n');
    writeFileSync(join(dir, 'good'), 'a-long-enough-token-1234\nignored\n');
    assert.throws(() => readTokenFile(join(dir, 'short')), /at least 16 visible ASCII/);
    assert.throws(() => readTokenFile(join(dir, 'missing')), /--admin-token-file: ENOENT/);
    assert.equal(readTokenFile(join(dir, 'good')), 'a-long-enough-token-1234');
    assert.throws(() => parseOpsOptions({ 'admin-token-file': join(dir, 'good') }), /needs --http/);
    assert.equal(
      parseOpsOptions({ http: '8080', 'admin-token-file': join(dir, 'good') }).adminToken,
      'a-long-enough-token-1234',
    );
  });

  it('one listener when both options name the same address; a port in use is a configuration error', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const hp = { host: '127.0.0.1', port };
    const ops = await startOps({ metrics: hp, http: hp }, 'adapter');
    try {
      assert.equal(ops.servers.length, 1);
      assert.deepEqual(ops.lines, [`http http://127.0.0.1:${port}/`, `metrics http://127.0.0.1:${port}/metrics`]);
      assert.ok(ops.metrics);
    } finally {
      await ops.close();
    }
    await assert.rejects(
      startOps({ http: { host: '127.0.0.1', port: busyPort } }, 'adapter'),
      (e: unknown) => isOverlayError(e, 'BAD_CONFIG') && /cannot listen for --http/.test((e as Error).message),
    );
    const none = await startOps({}, 'adapter');
    assert.equal(none.metrics, undefined, 'nothing served, nothing counted');
    assert.equal(none.servers.length, 0);
  });

  it('the commands refuse bad values with one line and a non-zero exit', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['adapter', '--sip', '127.0.0.1:0', '--bootstrap', '127.0.0.1:1', '--data', dir, '--metrics', 'nope'],
        /--metrics must be host:port/,
      ],
      [
        [
          'bootstrap',
          '--listen',
          '127.0.0.1:0',
          '--data',
          dir,
          '--admin-token-file',
          join(dir, 'short'),
          '--http',
          '0',
        ],
        /at least 16/,
      ],
      [['registrar', '--listen', '127.0.0.1:0', '--http', `127.0.0.1:${busyPort}`], /cannot listen for --http/],
      [['status', '--http', '127.0.0.1:1'], /no answer from http:\/\/127\.0\.0\.1:1/],
      [['status', '--http', '127.0.0.1:1', '--users'], /need --admin-token-file/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args, { timeoutMs: 30_000 });
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    }
  });

  it("every daemon's --help lists the options", async () => {
    for (const cmd of ['bootstrap', 'adapter', 'node', 'gateway', 'registrar']) {
      const r = await runCli([cmd, '--help']);
      assert.match(r.stdout, /--metrics /, cmd);
      assert.match(r.stdout, /--http /, cmd);
    }
    assert.match((await runCli(['bootstrap', '--help'])).stdout, /--admin-token-file/);
    assert.match((await runCli(['demo', '--help'])).stdout, /--http /);
  });
});
