import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../sip/e2e-helpers.ts';

/**
 * Driving Debian's linphonec (liblinphone 5.1) as an unmodified phone.
 *
 * What it takes, learned the hard way:
 * - HOME in a directory of the phone's own with `.local/share/linphone`
 *   created: liblinphone opens its SQLite database there while the core
 *   starts, and when that fails the start stops short: the network is never
 *   set reachable, no SIP listening point is created (`ports` says
 *   `sip port = 0`) and every REGISTER fails with "No listening point
 *   matching". Nothing else (routes, a tty, sound) is needed.
 * - `bind_address=127.0.0.1` keeps the phone on loopback; a port of 0 turns
 *   a transport off, -1 picks a random port.
 * - The `-c` file is rewritten by linphonec (the password becomes an HA1 for
 *   the realm of the first challenge), so it is written anew for every phone.
 * - stdin is read a line at a time: a second line arriving in the same read
 *   loses its first character, so each command waits for the next prompt.
 * - State is read from the debug log (`-d 6 -l FILE`), flushed per line:
 *   "Account ... moving from state [A] to [B]" and "CallSession ... moving
 *   from state A to B", plus every SIP message sent and received.
 * - `soundcard use files` replaces the (absent) sound card with WAV files.
 * - When a registrar refuses the password, linphonec asks for another on
 *   stdin ("Password for bob on <realm>: ") and takes the next line as one;
 *   so commands refuse to run then, and the phone is stopped with SIGTERM,
 *   on which linphonec unregisters and exits.
 */
export type Transport = 'udp' | 'tcp';

export interface LinphoneOptions {
  /** User part of the account, also the digest user name. */
  user: string;
  /** `host:port` of the registrar; the account is `sip:user@host:port`. */
  registrar: string;
  /** Digest password; none: the phone has no credentials to answer a challenge with. */
  password?: string;
  transport?: Transport;
  /** Local SIP port of the transport: a free port by default, -1 for one the phone picks. */
  port?: number;
  autoAnswer?: boolean;
  /** Registration lifetime asked for, seconds. */
  expires?: number;
  /**
   * liblinphone's default (true): after the first answer the Contact takes the
   * address and port the registrar saw (`received`/`rport`), which over TCP is
   * the connection's ephemeral source port. False keeps the listening port.
   */
  natHelper?: boolean;
  /**
   * False: leave out `soundcard use files`, for a phone that will carry no
   * call and whose password may be refused (and a new one asked for) before
   * the command could be sent.
   */
  wavFiles?: boolean;
  /**
   * Send every request through the registrar (`reg_route`): linphonec drops the port of a chat peer's URI,
   * so a `chat sip:bob@host:port` would otherwise go to port 5060.
   */
  route?: boolean;
}

/** A SIP message as belle-sip logged it. */
export interface LoggedMessage {
  /** Start line and headers, CRLFs made LFs. */
  head: string;
  /** belle-sip's channel (one per connection or UDP peer), e.g. `0x55d7d301a080`; absent when not logged. */
  channel?: string;
  sent?: boolean;
  /** `TCP://127.0.0.1:5060` */
  peer?: string;
}

export type RegistrationState = 'None' | 'Progress' | 'Ok' | 'Cleared' | 'Failed' | 'Refreshing';

export interface LinphonePhone {
  readonly user: string;
  readonly aor: string;
  readonly proc: ChildProcess;
  /** What linphonec printed on stdout and stderr. */
  out(): string;
  /** The debug log: state changes and SIP messages. */
  log(): string;
  /** The last registration state the log records ('None' before any). */
  registration(): RegistrationState;
  /** The last call state the log records, without its `LinphoneCall` prefix ('Idle' before any). */
  callState(): string;
  /** Every call state the log records, in order. */
  callStates(): string[];
  /** Every SIP message the phone sent or received, in order. */
  sipMessages(): LoggedMessage[];
  /** linphonec is waiting for a password on stdin (the one it had was refused). */
  passwordPrompted(): boolean;
  /** Run one linphonec command and return what it printed before the next prompt. */
  command(line: string, ms?: number): Promise<string>;
  /** Wait until `check(this)` holds; fails with the log's tail. */
  until(what: string, check: (p: LinphonePhone) => boolean, ms?: number): Promise<void>;
  /** SIGTERM (linphonec unregisters first), then SIGKILL if it lingers; removes the phone's directory. */
  stop(): Promise<void>;
}

const PROMPT = 'linphonec> ';
/**
 * belle-sip logs each message whole, CRLFs kept (a start line, then header
 * lines up to the blank line), after a line naming its channel and peer.
 */
const SIP_MESSAGE =
  /(?:channel \[(0x[0-9a-f]+)\]: (message sent to|received \[\d+\] new bytes from) \[([^\]]+)\][^\n]*\n)?^((?:SIP\/2\.0 \d{3} [^\r\n]*|[A-Z]+ \S+ SIP\/2\.0)\r?\n(?:[^\r\n]+\r?\n)*)/gm;

/** Start a phone in a directory of its own under `base`; it registers at once when it has a password. */
export async function startLinphone(base: string, opts: LinphoneOptions): Promise<LinphonePhone> {
  const transport = opts.transport ?? 'udp';
  const port = opts.port ?? (await freePort());
  const audioPort = await freePort();
  const dir = join(base, `linphone-${opts.user}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(join(dir, '.local', 'share', 'linphone'), { recursive: true });
  const aor = `sip:${opts.user}@${opts.registrar}`;
  const proxyParams = transport === 'tcp' ? ';transport=tcp' : '';
  const config = [
    '[sip]',
    // The account is the phone's default identity: chat messages go out as it, through its route.
    ...(opts.route ? ['default_proxy=0'] : []),
    `sip_port=${transport === 'udp' ? port : 0}`,
    `sip_tcp_port=${transport === 'tcp' ? port : 0}`,
    'sip_tls_port=0',
    'bind_address=127.0.0.1',
    'use_ipv6=0',
    'inc_timeout=60',
    '[rtp]',
    `audio_rtp_port=${audioPort}`,
    '[net]',
    `enable_nat_helper=${opts.natHelper === false ? 0 : 1}`,
    '[video]',
    'capture=0',
    'display=0',
    '[proxy_0]',
    `reg_proxy=<sip:${opts.registrar}${proxyParams}>`,
    ...(opts.route ? [`reg_route=<sip:${opts.registrar}${proxyParams};lr>`] : []),
    `reg_identity=${aor}`,
    `reg_expires=${opts.expires ?? 60}`,
    'reg_sendregister=1',
    ...(opts.password ? ['[auth_info_0]', `username=${opts.user}`, `passwd=${opts.password}`] : []),
    '',
  ].join('\n');
  const rc = join(dir, 'linphonerc');
  const logFile = join(dir, 'linphone.log');
  writeFileSync(rc, config);
  writeFileSync(logFile, '');
  const args = ['-c', rc, '-d', '6', '-l', logFile, ...(opts.autoAnswer ? ['-a'] : [])];
  const proc = spawn('linphonec', args, {
    cwd: dir,
    env: { ...process.env, HOME: dir, LANG: 'C' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stdin?.on('error', () => {}); // a phone that died must not take the test runner with it
  const log = () => readFileSync(logFile, 'utf8');
  const prompts = () => out.split(PROMPT).length - 1;
  let queue: Promise<unknown> = Promise.resolve();

  const phone: LinphonePhone = {
    user: opts.user,
    aor,
    proc,
    out: () => out,
    log,
    registration() {
      const all = [
        ...log().matchAll(/moving from state \[LinphoneRegistration\w+\] to \[LinphoneRegistration(\w+)\]/g),
      ];
      return (all.at(-1)?.[1] ?? 'None') as RegistrationState;
    },
    callStates: () =>
      [...log().matchAll(/CallSession \[\w+\] moving from state \w+ to LinphoneCall(\w+)/g)].map((m) => m[1]),
    callState: () => phone.callStates().at(-1) ?? 'Idle',
    sipMessages: () =>
      [...log().matchAll(SIP_MESSAGE)].map((m) => ({
        head: m[4].replace(/\r/g, ''),
        channel: m[1],
        sent: m[2] === undefined ? undefined : m[2].startsWith('message sent'),
        peer: m[3],
      })),
    passwordPrompted: () => /Password for [^\n]* on [^\n]*: $/.test(out),
    command(line, ms = 10_000) {
      const run = async () => {
        await phone.until('the prompt', () => prompts() > 0, ms);
        assert.ok(!phone.passwordPrompted(), `${opts.user}'s linphonec asks for a password; '${line}' would answer it`);
        const before = prompts();
        const from = out.length;
        proc.stdin?.write(`${line}\n`);
        await phone.until(`the answer to '${line}'`, () => prompts() > before, ms);
        return out.slice(from, out.lastIndexOf(PROMPT));
      };
      const next = queue.then(run, run);
      queue = next.catch(() => {});
      return next;
    },
    async until(what, check, ms = 30_000) {
      const end = Date.now() + ms;
      while (!check(phone)) {
        if (Date.now() > end || proc.exitCode !== null || proc.signalCode !== null)
          assert.fail(
            `${opts.user}'s linphonec: ${what} did not happen; stdout:\n${out.slice(-1500)}\nlog:\n${tail(log())}`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
        await gone;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await phone.until('start-up', () => prompts() > 0, 20_000);
    if (opts.wavFiles !== false) {
      const files = await phone.command('soundcard use files');
      assert.match(files, /Using wav files/i, `soundcard use files: ${files}`);
    }
  } catch (e) {
    proc.kill('SIGKILL'); // the caller never gets a handle to stop it with
    throw e;
  }
  return phone;
}

/** The last SIP messages of a log, without liblinphone's media chatter. */
function tail(log: string): string {
  const keep = log.split('\n').filter((l) => !/mediastreamer|ortp-|Codec |codec /.test(l));
  return keep.slice(-120).join('\n');
}
