import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, haveBinary, type Running, startRegistrar, stop } from './e2e-helpers.ts';

/**
 * Two real baresip phones (Debian's baresip 1.0) register with `secp2psip registrar`; alice dials bob through
 * it, follows the 302 straight to bob's phone, and bob (answermode=auto) answers. Audio goes through the
 * aubridge module so no sound device is needed; SIP traces (-s) on stdout are what the test reads.
 */
const skip = haveBinary('baresip') ? false : 'baresip is not installed';

interface Phone {
  user: string;
  sipPort: number;
  ctrlPort: number;
  proc: ChildProcess;
  out: () => string;
}

function writeConfig(dir: string, user: string, sipPort: number, ctrlPort: number, registrarPort: number): void {
  mkdirSync(dir, { recursive: true });
  const config = [
    'poll_method epoll',
    `sip_listen 127.0.0.1:${sipPort}`,
    'call_local_timeout 20',
    `audio_player aubridge,${user}`,
    `audio_source aubridge,${user}`,
    `audio_alert aubridge,${user}`,
    'module_path /usr/lib/baresip/modules',
    'module g711.so',
    'module aubridge.so',
    'module account.so',
    'module_app menu.so',
    'module_app ctrl_tcp.so',
    `ctrl_tcp_listen 127.0.0.1:${ctrlPort}`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'config'), config);
  // No outbound proxy: the phone registers with the AOR's host:port and follows a 302 to the contact directly.
  writeFileSync(join(dir, 'accounts'), `<sip:${user}@127.0.0.1:${registrarPort}>;regint=60;answermode=auto\n`);
}

async function startPhone(base: string, user: string, registrarPort: number): Promise<Phone> {
  const sipPort = await freePort();
  const ctrlPort = await freePort();
  const dir = join(base, user);
  writeConfig(dir, user, sipPort, ctrlPort, registrarPort);
  const proc = spawn('baresip', ['-f', dir, '-s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { user, sipPort, ctrlPort, proc, out: () => out };
}

async function waitFor(what: string, phone: Phone, re: RegExp, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!re.test(phone.out())) {
    if (Date.now() > end || phone.proc.exitCode !== null)
      assert.fail(`${phone.user}: ${what} did not happen; output:\n${phone.out().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Send one command over baresip's ctrl_tcp (JSON in a netstring). */
async function ctrl(port: number, command: string, params: string): Promise<void> {
  const s = connect(port, '127.0.0.1');
  await once(s, 'connect');
  const json = JSON.stringify({ command, params, token: 't1' });
  s.write(`${Buffer.byteLength(json)}:${json},`);
  await once(s, 'data');
  s.destroy();
}

describe('secp2psip registrar with two baresip phones', { skip, timeout: 90_000 }, () => {
  let reg: Running | undefined;
  let base = '';
  const phones: Phone[] = [];

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'baresip-'));
    reg = await startRegistrar(['--min-expires', '30']);
  });

  after(async () => {
    for (const p of phones) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    await stop(reg);
    rmSync(base, { recursive: true, force: true });
  });

  it('alice dials bob: the 302 sends her phone to bob, and bob answers the INVITE from her address', async () => {
    const port = reg!.port;
    const bob = await startPhone(base, 'bob', port);
    phones.push(bob);
    await waitFor('registration', bob, /bob@127\.0\.0\.1: \{0\/UDP\/v4\} 200 OK/);
    const alice = await startPhone(base, 'alice', port);
    phones.push(alice);
    await waitFor('registration', alice, /alice@127\.0\.0\.1: \{0\/UDP\/v4\} 200 OK/);

    await ctrl(alice.ctrlPort, 'dial', `sip:bob@127.0.0.1:${port}`);
    await waitFor('call establishment', bob, /Call established/);
    await waitFor('call establishment', alice, /Call established/);

    // The registrar redirected alice to bob's registered contact.
    assert.match(
      alice.out(),
      new RegExp(`SIP/2.0 302 Moved Temporarily[\\s\\S]*?Contact: <sip:bob[^@]*@127\\.0\\.0\\.1:${bob.sipPort}>`),
    );
    // Bob's phone got the INVITE straight from alice's phone, not through the registrar.
    assert.match(
      bob.out(),
      new RegExp(`UDP 127\\.0\\.0\\.1:${alice.sipPort} -> 127\\.0\\.0\\.1:${bob.sipPort}\\s*\\r?\\nINVITE sip:bob`),
    );
    assert.match(bob.out(), /answering call on line \d+ from sip:alice@127\.0\.0\.1:\d+ with 200/);
    assert.match(alice.out(), /SIP\/2\.0 200 [\s\S]*Call established: sip:bob@127\.0\.0\.1/);
  });
});
