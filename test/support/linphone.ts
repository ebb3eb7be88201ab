import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../sip/e2e-helpers.ts';

/**
 * Driving Debian's linphonec (liblinphone 5) as an unmodified phone: a
 * config file and HOME of its own (its chat database lives there), commands
 * on stdin, and its debug log (SIP messages included) on stdout.
 *
 * What it needs to be usable from a test: the SIP port set in `[sip]` (the
 * `sip_port` key alone is ignored), an outbound route through the account's
 * registrar (linphonec drops the port of a chat peer's URI, so without the
 * route it would send to port 5060), and the directory of its database.
 */
export interface Linphone {
  name: string;
  sipPort: number;
  proc: ChildProcess;
  out: () => string;
  /** One linphonec command line (e.g. `chat sip:bob@127.0.0.1:5060 hello`). */
  command(line: string): void;
  stop(): void;
}

export async function startLinphone(
  base: string,
  name: string,
  registrar: string,
  transport: 'udp' | 'tcp' = 'udp',
): Promise<Linphone> {
  const sipPort = await freePort();
  const home = join(base, name);
  mkdirSync(join(home, '.local', 'share', 'linphone'), { recursive: true });
  const t = transport === 'tcp' ? ';transport=tcp' : '';
  const rc = [
    '[sip]',
    `sip_udp_port=${transport === 'udp' ? sipPort : -1}`,
    `sip_tcp_port=${transport === 'tcp' ? sipPort : -1}`,
    'default_proxy=0',
    '[rtp]',
    `audio_rtp_port=${await freePort()}`,
    '[proxy_0]',
    `reg_proxy=<sip:${registrar}${t}>`,
    `reg_route=<sip:${registrar}${t};lr>`,
    `reg_identity=sip:${name}@${registrar}`,
    'reg_expires=60',
    'reg_sendregister=1',
    '',
  ].join('\n');
  writeFileSync(join(home, 'rc'), rc);
  const proc = spawn('linphonec', ['-c', join(home, 'rc'), '-d', '6'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, HOME: home },
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return {
    name,
    sipPort,
    proc,
    out: () => out,
    command: (line) => proc.stdin?.write(`${line}\n`),
    stop: () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}

export async function waitForLinphone(what: string, phone: Linphone, re: RegExp, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!re.test(phone.out())) {
    if (Date.now() > end || phone.proc.exitCode !== null)
      assert.fail(`${phone.name}: ${what} did not happen; output:\n${phone.out().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
