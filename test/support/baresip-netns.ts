/**
 * Debian's baresip as an unmodified phone on a host of the test network
 * (testnet.ts): its own config directory, audio through aubridge, SIP traces
 * (-s) on stdout, commands over ctrl_tcp on the host's loopback, sent from
 * inside the host's namespace (the root namespace cannot reach it).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host, Testnet } from './testnet.ts';

export interface NetnsPhone {
  name: string;
  host: Host;
  sipPort: number;
  ctrlPort: number;
  proc: ChildProcess;
  out: () => string;
}

export interface NetnsPhoneOptions {
  sipPort?: number;
  /** Extra lines for baresip's config (e.g. STUN/TURN settings). */
  config?: string[];
  /** Extra account parameters (e.g. `;medianat=turn;stunserver=...`). */
  accountParams?: string;
  /** Extra modules to load before the account (e.g. `turn.so`). */
  modules?: string[];
  /** ctrl_tcp port on the host's loopback (default 4444; one per phone on a host). */
  ctrlPort?: number;
  /** Audio source (default: aubridge, which only echoes what the phone plays; `ausine,440` sends a tone). */
  audioSource?: string;
}

const CTRL_PORT = 4444;

/** Start baresip on `host` with the account `aor` (registering there, auto-answering). */
export function startNetnsPhone(
  net: Testnet,
  host: Host,
  base: string,
  name: string,
  aor: string,
  o: NetnsPhoneOptions = {},
): NetnsPhone {
  const sipPort = o.sipPort ?? 5060;
  const ctrlPort = o.ctrlPort ?? CTRL_PORT;
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'config'),
    [
      'poll_method epoll',
      `sip_listen ${host.addr}:${sipPort}`,
      'call_local_timeout 30',
      `audio_player aubridge,${name}`,
      `audio_source ${o.audioSource ?? `aubridge,${name}`}`,
      `audio_alert aubridge,${name}`,
      'module_path /usr/lib/baresip/modules',
      'module g711.so',
      'module aubridge.so',
      ...(o.modules ?? []).map((m) => `module ${m}`),
      'module account.so',
      'module_app menu.so',
      'module_app ctrl_tcp.so',
      `ctrl_tcp_listen 127.0.0.1:${ctrlPort}`,
      ...(o.config ?? []),
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'accounts'), `<${aor}>${o.accountParams ?? ''};regint=60;answermode=auto\n`);
  const proc = net.spawn(host, ['baresip', '-f', dir, '-s']);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { name, host, sipPort, ctrlPort, proc, out: () => out };
}

/** One ctrl_tcp command (JSON in a netstring), sent from inside the phone's host. */
export async function netnsPhoneCommand(
  net: Testnet,
  phone: NetnsPhone,
  command: string,
  params: string,
): Promise<void> {
  const json = JSON.stringify({ command, params, token: 't1' });
  const netstring = `${Buffer.byteLength(json)}:${json},`;
  const script = `exec 3<>/dev/tcp/127.0.0.1/${phone.ctrlPort}; printf '%s' "$1" >&3; timeout 5 head -c 1 <&3 >/dev/null; exit 0`;
  await net.exec(phone.host, ['bash', '-c', script, 'ctrl', netstring], 15_000);
}

export async function waitForNetnsPhone(what: string, phone: NetnsPhone, re: RegExp, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!re.test(phone.out())) {
    if (Date.now() > end || phone.proc.exitCode !== null)
      assert.fail(
        `${phone.name}: ${what} did not happen; output:\n${phone
          .out()
          .slice(-4000)
          .replace(/\[\d+:\d+:\d+\] audio=[^\n]*/g, '')}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** How many times `re` occurs in the phone's output. */
export function countIn(phone: NetnsPhone, re: RegExp): number {
  return (phone.out().match(new RegExp(re.source, 'g')) ?? []).length;
}

/** Wait until `re` occurs in the phone's output more than `n` times; on failure show `logs()`. */
export async function waitForMore(
  phone: NetnsPhone,
  re: RegExp,
  n: number,
  what: string,
  ms: number,
  logs: () => string = () => phone.out().slice(-4000),
): Promise<void> {
  const end = Date.now() + ms;
  while (countIn(phone, re) <= n) {
    if (Date.now() > end || phone.proc.exitCode !== null)
      assert.fail(`${phone.name}: ${what} did not happen\n${logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `caller` dials `target`; the callee answers and hangs up; its BYE reaches the caller. */
export async function callAndHangUp(
  net: Testnet,
  caller: NetnsPhone,
  callee: NetnsPhone,
  target: string,
  logs?: () => string,
): Promise<void> {
  const up = /Call established/;
  const [atCaller, atCallee, byes] = [countIn(caller, up), countIn(callee, up), countIn(caller, /\nBYE sip:/)];
  await netnsPhoneCommand(net, caller, 'dial', target);
  await waitForMore(callee, up, atCallee, 'call established', 40_000, logs);
  await waitForMore(caller, up, atCaller, 'call established', 10_000, logs);
  await netnsPhoneCommand(net, callee, 'hangup', '');
  await waitForMore(caller, /\nBYE sip:/, byes, 'BYE from the callee', 15_000, logs);
}
