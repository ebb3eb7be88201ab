import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runProgram } from '../sip/e2e-helpers.ts';
import { startCli, stopCli } from './cli-process.ts';
import { sipRequest } from './sip-probe.ts';

const CLI = ['bin/secp2psip.mjs'];

describe('secp2psip node and gateway commands', { timeout: 300_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'whanausip-cli-'));
  after(() => rmSync(base, { recursive: true, force: true }));

  it('bad arguments give one line on stderr and exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['node', '--dht', '127.0.0.1:0', '--data', base], /--sip is required/],
      [['gateway', '--sip', '127.0.0.1:0', '--dht', 'nowhere', '--data', base], /--dht must be host:port/],
      [['node', '--sip', '127.0.0.1:0', '--dht', '127.0.0.1:0', '--data', base, '--peer', 'abc@1.2.3.4:5'], /40 hex/],
      [['node', '--sip', '127.0.0.1:0', '--dht', '127.0.0.1:0', '--data', base, '--admin-key', 'zz'], /64 hex/],
      [['gateway', '--sip', '127.0.0.1:0', '--dht', '127.0.0.1:0', '--data', base, '--setup-period', '0'], /between/],
    ];
    // Generous limits: starting the TypeScript CLI takes seconds on a loaded machine.
    const runs = await Promise.all(cases.map(([args]) => runProgram(process.execPath, [...CLI, ...args], 120_000)));
    for (const [k, [args, re]] of cases.entries()) {
      const r = runs[k];
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.out}`);
      assert.match(r.out, re);
      assert.equal(r.out.trim().split('\n').length, 1, r.out);
    }
  });

  it('a node keeps its identity (0600) and its peers across restarts, and exits cleanly on SIGTERM', async () => {
    const data = join(base, 'n1');
    const friend = `${'ab'.repeat(20)}@127.0.0.1:9`;
    const args = ['--sip', '127.0.0.1:0', '--dht', '127.0.0.1:0', '--data', data, '--setup-period', '3600'];
    const first = await startCli('node', [...args, '--peer', friend]);
    assert.equal(first.uri, `sip:${first.hash}@127.0.0.1:${first.sipPort}`);
    assert.match(first.peer, new RegExp(`^${first.hash}@127\\.0\\.0\\.1:\\d+$`));
    assert.equal(statSync(join(data, 'identity.pem')).mode & 0o777, 0o600);
    // The node answers SIP at once: OPTIONS 200, and an INVITE for a key hash before any SETUP is 480.
    assert.equal((await sipRequest(first.sipPort, 'OPTIONS', first.uri)).status, 200);
    assert.equal((await sipRequest(first.sipPort, 'INVITE', `sip:${'cd'.repeat(20)}@127.0.0.1`)).status, 480);
    assert.equal(await stopCli(first), 0);
    assert.match(first.stderr(), /"msg":"node stopping"/);

    const second = await startCli('node', args);
    assert.equal(second.hash, first.hash, 'same identity after restart');
    const deadline = Date.now() + 60_000;
    while (!/"configured":1/.test(second.stderr()) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    assert.match(second.stderr(), /"configured":1/, 'the peer given at the first start was kept');
    assert.equal(await stopCli(second), 0);
  });
});
