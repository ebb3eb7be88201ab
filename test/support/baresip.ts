import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../sip/e2e-helpers.ts';

/**
 * Driving Debian's baresip as an unmodified phone: a temporary config
 * directory, audio through the aubridge module (no sound device), SIP traces
 * (-s) on stdout, and commands over ctrl_tcp.
 */
export interface Phone {
  name: string;
  sipPort: number;
  ctrlPort: number;
  proc: ChildProcess;
  out: () => string;
}

export interface PhoneOptions {
  /** Send every request, the redirected INVITE included, through this proxy (e.g. `sip:127.0.0.1:5060`). */
  outboundProxy?: string;
  /** Seconds an unanswered outgoing call may ring. */
  localTimeoutS?: number;
  /** Digest password of the account (baresip answers 401 and 407 with it). */
  authPass?: string;
  /** Extra modules to load (e.g. `contact.so`, `presence.so`). */
  modules?: string[];
  /** Lines of the `contacts` file (e.g. `<sip:bob@127.0.0.1:5060>`); the first is the current contact. */
  contacts?: string[];
  /** More account parameters (e.g. `;pubint=60`: publish presence, RFC 3903). */
  accountParams?: string;
  /**
   * A PEM file holding a certificate and its key: baresip then also listens for SIP over TLS, on its SIP port + 1
   * (the callee of a call over TLS needs it: the caller's phone connects to its TLS contact).
   */
  tlsCert?: string;
  /**
   * Media encryption of the account: `srtp-mand` (SDES, RFC 4568: SRTP only, the call fails without it), or
   * `dtls_srtp` (DTLS-SRTP, RFC 5763, as WebRTC browsers use).
   */
  mediaenc?: string;
  /** Media NAT traversal of the account, e.g. `ice` (RFC 8445, which browsers require). */
  medianat?: string;
  /** Multiplex RTP and RTCP on one port (RFC 5761, which browsers require). */
  rtcpMux?: boolean;
}

/**
 * Start a phone whose account is `aor` (e.g. `sip:<hash>@127.0.0.1:5060`), registering there, auto-answering.
 * Without an outbound proxy the phone follows a 302 straight to the contact.
 */
export async function startPhone(base: string, name: string, aor: string, opts: PhoneOptions = {}): Promise<Phone> {
  const sipPort = await freePort();
  const ctrlPort = await freePort();
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  const config = [
    'poll_method epoll',
    `sip_listen 127.0.0.1:${sipPort}`,
    `call_local_timeout ${opts.localTimeoutS ?? 20}`,
    `audio_player aubridge,${name}`,
    `audio_source aubridge,${name}`,
    `audio_alert aubridge,${name}`,
    'module_path /usr/lib/baresip/modules',
    'module g711.so',
    'module aubridge.so',
    // A media encryption module before the accounts that name it.
    ...(opts.mediaenc?.startsWith('srtp') ? ['module srtp.so'] : []),
    ...(opts.mediaenc === 'dtls_srtp' ? ['module dtls_srtp.so'] : []),
    ...(opts.medianat ? [`module ${opts.medianat}.so`] : []),
    ...(opts.rtcpMux ? ['rtcp_mux yes'] : []),
    'module account.so',
    ...(opts.modules ?? []).map((m) => `module ${m}`),
    ...(opts.tlsCert ? [`sip_certificate ${opts.tlsCert}`] : []),
    'module_app menu.so',
    'module_app ctrl_tcp.so',
    `ctrl_tcp_listen 127.0.0.1:${ctrlPort}`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'config'), config);
  if (opts.contacts) writeFileSync(join(dir, 'contacts'), `${opts.contacts.join('\n')}\n`);
  const proxy = opts.outboundProxy ? `;outbound="${opts.outboundProxy}"` : '';
  const auth = opts.authPass ? `;auth_pass=${opts.authPass}` : '';
  const menc =
    (opts.mediaenc ? `;mediaenc=${opts.mediaenc}` : '') + (opts.medianat ? `;medianat=${opts.medianat}` : '');
  writeFileSync(
    join(dir, 'accounts'),
    `<${aor}>${proxy}${auth}${menc};regint=60${opts.accountParams ?? ''};answermode=auto\n`,
  );
  const proc = spawn('baresip', ['-f', dir, '-s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { name, sipPort, ctrlPort, proc, out: () => out };
}

export async function waitForPhone(what: string, phone: Phone, re: RegExp, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!re.test(phone.out())) {
    if (Date.now() > end || phone.proc.exitCode !== null)
      assert.fail(`${phone.name}: ${what} did not happen; output:\n${phone.out().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A phone for `user` that has registered: `start(attempt)` starts one (with fresh ports each time), and a phone that
 * exits before its 200 (a port taken between the check and baresip's bind) is started again, up to 3 times.
 * `serverLog` is the registrar's log, shown with the phone's output when the registration never comes.
 */
export async function registeredPhone(
  user: string,
  start: (attempt: number) => Promise<Phone>,
  serverLog: () => string,
  what = 'registration',
): Promise<Phone> {
  const registered = new RegExp(`${user}@127\\.0\\.0\\.1.*200 OK`);
  for (let attempt = 1; ; attempt++) {
    const phone = await start(attempt);
    const end = Date.now() + 40_000;
    while (!registered.test(phone.out()) && phone.proc.exitCode === null) {
      if (Date.now() > end)
        assert.fail(
          `${user} ${what} did not happen\n${`${phone.out()}\n--- adapter log ---\n${serverLog()}`.slice(-3000)}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
    if (registered.test(phone.out())) return phone;
    if (attempt === 3) assert.fail(`${user}: baresip exited:\n${phone.out()}`);
  }
}

/** One ctrl_tcp command (JSON in a netstring). */
export async function phoneCommand(phone: Phone, command: string, params: string): Promise<void> {
  const s = connect(phone.ctrlPort, '127.0.0.1');
  await once(s, 'connect');
  const json = JSON.stringify({ command, params, token: 't1' });
  s.write(`${Buffer.byteLength(json)}:${json},`);
  await once(s, 'data');
  s.destroy();
}
