/**
 * A WhanauSIP node keeps its phone's registration across a restart, as an
 * adapter does: right after the restart an INVITE for the node's identity is
 * redirected to the phone, and the node's published record names the phone,
 * instead of the node's own address until the phone registers again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startCli, stopCli } from './cli-process.ts';
import { sipRequest } from './sip-probe.ts';

describe('WhanauSIP node restarted as a process', { timeout: 240_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'whanausip-bindings-'));
  after(() => rmSync(base, { recursive: true, force: true }));

  it("keeps its phone's binding: the first INVITE after the restart goes to the phone", async () => {
    const args = ['--sip', '127.0.0.1:0', '--dht', '127.0.0.1:0', '--data', join(base, 'n'), '--setup-period', '3600'];
    const first = await startCli('node', [...args, '--log-level', 'info']);
    const reg = await sipRequest(first.sipPort, 'REGISTER', `sip:127.0.0.1:${first.sipPort}`, { to: first.uri });
    assert.equal(reg.status, 200);
    const phone = /<(sip:probe@127\.0\.0\.1:\d+)>/.exec(reg.contacts[0] ?? '')?.[1];
    assert.ok(phone, `binding in ${reg.contacts}`);
    assert.equal(await stopCli(first), 0);

    const second = await startCli('node', [...args, '--log-level', 'info']);
    try {
      assert.equal(second.hash, first.hash);
      assert.match(second.stderr(), /"restored":1/);
      const invite = await sipRequest(second.sipPort, 'INVITE', second.uri);
      assert.equal(invite.status, 302, `${invite.status} ${invite.reason}`);
      assert.match(invite.contacts[0] ?? '', new RegExp(`^<${phone}>`));
    } finally {
      await stopCli(second);
    }
  });
});
