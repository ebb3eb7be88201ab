/**
 * Soak with real processes (issue 17): one bootstrap and A adapters started from `bin/secp2psip.mjs`, P phones
 * registered over UDP (phone i at adapter i mod A), calls at R per second from a random phone to a random other
 * one (an INVITE to `sip:<callee>@<caller's adapter>`, expecting a 302), and every S seconds one adapter, round
 * robin, restarted alternately by SIGKILL and SIGTERM with the same data directory and SIP port. A phone whose
 * own request gets 503, 408 or no answer registers again (every second until it gets a 200), as real phones do.
 *
 *   node --import tsx bench/soak.ts [--minutes N] [--adapters A] [--phones P] [--rate R] [--restart-every S]
 *                                   [--out FILE] [--log-level L] [--log-dir DIR]
 *
 * Every 10 s it prints the calls attempted and failed in the window and the RSS and open file descriptors of
 * every daemon (/proc/<pid>/status, /proc/<pid>/fd); for each restart the calls failed until recovery and the
 * recovery time: from the signal to the first 302 for a callee on that adapter among calls sent after the new
 * process printed its ready line (calls sent before may be answered from a caller adapter's verified-user cache
 * while the adapter is down). At the end a table, and JSON (default bench/results/soak.json) with the totals,
 * the per-restart figures and the RSS/fd series. A benchmark, not a test: not part of `npm test`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { percentile } from '../src/util/stats.ts';
import { freePort } from '../test/sip/e2e-helpers.ts';
import { type BurstAnswer, SipBurst } from '../test/support/sip-burst.ts';

interface Options {
  minutes: number;
  adapters: number;
  phones: number;
  rate: number;
  restartEvery: number;
  out: string;
  /** Log level of the daemons (their stderr tail is printed when one fails to start). */
  logLevel: string;
  /** Keep every daemon's whole log here, one file per daemon, appended across restarts. */
  logDir?: string;
}

const USAGE =
  'usage: node --import tsx bench/soak.ts [--minutes N] [--adapters A] [--phones P] [--rate R] [--restart-every S] [--out FILE] [--log-level L] [--log-dir DIR]';

function parseArgs(argv: string[]): Options {
  const o: Options = {
    minutes: 5,
    adapters: 8,
    phones: 40,
    rate: 30,
    restartEvery: 60,
    out: join('bench', 'results', 'soak.json'),
    logLevel: 'warn',
  };
  const num = (flag: string, v: string | undefined, min: number, integer: boolean): number => {
    if (v === undefined) fail(`${flag} needs a value`);
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min)
      fail(`${flag} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const v = argv[i + 1];
    switch (flag) {
      case '--minutes':
        o.minutes = num(flag, v, 0.1, false);
        break;
      case '--adapters':
        o.adapters = num(flag, v, 2, true);
        break;
      case '--phones':
        o.phones = num(flag, v, 2, true);
        break;
      case '--rate':
        o.rate = num(flag, v, 0.1, false);
        break;
      case '--restart-every':
        o.restartEvery = num(flag, v, 5, false);
        break;
      case '--out':
        if (v === undefined || v === '' || v.startsWith('--')) fail('--out needs a file name');
        o.out = v;
        break;
      case '--log-level':
        if (v === undefined || !['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(v))
          fail(`--log-level must be fatal, error, warn, info, debug, trace or silent, got '${v ?? ''}'`);
        o.logLevel = v;
        break;
      case '--log-dir':
        if (v === undefined || v === '' || v.startsWith('--')) fail('--log-dir needs a directory');
        o.logDir = v;
        break;
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        fail(`unknown argument '${flag}' (--help for usage)`);
    }
    i++;
  }
  if (o.phones < o.adapters) fail(`--phones (${o.phones}) must be at least --adapters (${o.adapters})`);
  return o;
}

function fail(msg: string): never {
  process.stderr.write(`soak: ${msg}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------- processes

interface Daemon {
  name: string;
  proc: ChildProcess;
  /** The last few KB of stderr, for a failure report (the log goes to stdout, kept until the ready line). */
  err: () => string;
}

const children = new Set<ChildProcess>();

let logDir: string | undefined;

function startDaemon(name: string, args: string[], ready: RegExp, timeoutMs = 60_000) {
  const proc = spawn(process.execPath, ['bin/secp2psip.mjs', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  if (logDir !== undefined) {
    const file = createWriteStream(join(logDir, `${name.replace(/\s+/g, '-')}.log`), { flags: 'a' });
    file.write(`--- ${new Date().toISOString()} start\n`);
    proc.stdout?.on('data', (b: Buffer) => file.write(b));
    proc.stderr?.on('data', (b: Buffer) => file.write(b));
    proc.once('exit', (code, sig) => file.end(`--- ${new Date().toISOString()} exit ${code ?? sig}\n`));
  }
  let out = '';
  let err = '';
  let isReady = false;
  proc.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const d: Daemon = { name, proc, err: () => err };
  return new Promise<{ d: Daemon; m: RegExpExecArray }>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${name} did not start in ${timeoutMs / 1000} s:\n${(out + err).slice(-3000)}`));
    }, timeoutMs);
    proc.stdout?.on('data', (b: Buffer) => {
      if (isReady) return; // keep draining the pipe
      // Matched before trimming: at info level one chunk can carry the ready line and many KB of log after it.
      out += b.toString();
      const m = ready.exec(out);
      out = out.slice(-8000);
      if (m) {
        isReady = true;
        clearTimeout(timer);
        resolve({ d, m });
      }
    });
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      if (!isReady) reject(new Error(`${name} exited with ${code ?? sig}:\n${(out + err).slice(-3000)}`));
    });
  });
}

function exited(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((r) => p.once('exit', () => r()));
}

async function stopProc(p: ChildProcess, sig: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = exited(p);
  p.kill(sig);
  const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}

/** RSS in MiB and open file descriptors of a live process, from /proc. */
function usage(pid: number | undefined): { rssMiB: number; fds: number } | null {
  if (pid === undefined) return null;
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (!m) return null; // exited, not reaped yet
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { rssMiB: Math.round(Number(m[1]) / 102.4) / 10, fds };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- soak

interface Call {
  t: number;
  callerAdapter: number;
  calleeAdapter: number;
  ok: boolean;
  status: number | 'timeout';
}

interface Restart {
  adapter: number;
  signal: 'SIGKILL' | 'SIGTERM';
  /** ms since the soak started. */
  at: number;
  exitMs?: number;
  readyMs?: number;
  recoveryMs?: number;
  callsUntilRecovery: number;
  failedUntilRecovery: number;
  failedUntilNext: number;
  /** Failed calls until the next restart, by answer and by which side was on the restarted adapter. */
  failedByStatus: Record<string, number>;
  failedCallerOnIt: number;
  failedCalleeOnIt: number;
  failedNeither: number;
  startError?: string;
}

interface Sample {
  t: number;
  attempted: number;
  failed: number;
  daemons: Record<string, { rssMiB: number; fds: number } | null>;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const base = mkdtempSync(join(tmpdir(), 'secp2psip-soak-'));
  const bursts: SipBurst[] = [];
  let stopping = false;
  const cleanup = async () => {
    stopping = true;
    for (const b of bursts) b.close();
    await Promise.all([...children].map((p) => stopProc(p, 'SIGTERM', 5000)));
    rmSync(base, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      process.stderr.write(`\nsoak: ${sig}, stopping every daemon\n`);
      void cleanup().finally(() => process.exit(130));
    });

  try {
    await run(o, base, bursts, () => stopping);
  } finally {
    await cleanup();
  }
}

async function run(o: Options, base: string, bursts: SipBurst[], stopping: () => boolean): Promise<void> {
  logDir = o.logDir;
  if (logDir !== undefined) mkdirSync(logDir, { recursive: true });
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const T0 = Date.now();
  const now = () => Date.now() - T0;
  const sec = (ms: number) => (ms / 1000).toFixed(1);

  const bootDir = join(base, 'bootstrap');
  mkdirSync(bootDir, { recursive: true, mode: 0o700 });
  const { d: boot, m: bm } = await startDaemon(
    'bootstrap',
    [
      'bootstrap',
      '--listen',
      '127.0.0.1:0',
      '--data',
      bootDir,
      '--log-level',
      o.logLevel,
      '--new-names-per-minute',
      '0',
      '--new-names-per-address',
      '0',
      '--new-names-per-adapter',
      '0',
    ],
    /^bootstrap (\S+@(\S+))\nkey [0-9a-f]{64}\n/m,
  );
  const spec = bm[1];
  const sipPorts: number[] = [];
  for (let i = 0; i < o.adapters; i++) sipPorts.push(await freePort());
  const adapterArgs = (i: number) => [
    'adapter',
    '--sip',
    `127.0.0.1:${sipPorts[i]}`,
    '--bootstrap',
    spec,
    '--data',
    join(base, `adapter-${i}`),
    '--open-registration',
    '--log-level',
    o.logLevel,
    ...(Math.ceil(o.phones / o.adapters) > 10 ? ['--new-names-per-minute', '0'] : []),
  ];
  const adapters: (Daemon | undefined)[] = [];
  for (let i = 0; i < o.adapters; i++)
    adapters.push((await startDaemon(`adapter ${i}`, adapterArgs(i), /^adapter sip:(\S+:(\d+))\n/m)).d);
  const sip = (i: number) => `127.0.0.1:${sipPorts[i]}`;
  log(`bootstrap ${spec}; ${o.adapters} adapters up after ${sec(now())} s`);

  // Phones: one UDP socket each, talking to its adapter.
  const adapterOf = (p: number) => p % o.adapters;
  const user = (p: number) => `soak${p}`;
  const phones: SipBurst[] = [];
  for (let p = 0; p < o.phones; p++) {
    const b = await SipBurst.open(sip(adapterOf(p)));
    bursts.push(b);
    phones.push(b);
  }
  const registering = new Set<number>();
  let reRegistrations = 0;
  const register = async (p: number, timeoutMs = 5000): Promise<BurstAnswer | null> =>
    phones[p].send({ method: 'REGISTER', uri: `sip:${sip(adapterOf(p))}`, from: user(p) }, timeoutMs);
  /** Registers again until a 200 (a phone after 503/408/no answer). */
  const reRegister = (p: number) => {
    if (registering.has(p) || stopping()) return;
    registering.add(p);
    reRegistrations++;
    void (async () => {
      while (!stopping()) {
        const a = await register(p, 3000);
        if (a?.status === 200) break;
        await new Promise((r) => setTimeout(r, Math.min(5, a?.retryAfter ?? 1) * 1000));
      }
      registering.delete(p);
    })();
  };
  for (let p = 0; p < o.phones; p++) {
    let a = await register(p, 15_000);
    for (let i = 0; i < 20 && a?.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      a = await register(p, 15_000);
    }
    if (a?.status !== 200) throw new Error(`phone ${user(p)} could not register: ${a?.status} ${a?.reason}`);
  }
  log(`${o.phones} phones registered after ${sec(now())} s; soak of ${o.minutes} min starts`);

  // Calls.
  const calls: Call[] = [];
  const restarts: Restart[] = [];
  /** Per adapter: when its current process printed its ready line (ms since start). */
  const readyAt: number[] = adapters.map(() => now());
  const inFlight = new Set<Promise<void>>();
  const S0 = now();
  const endAt = S0 + o.minutes * 60_000;
  const placeCall = () => {
    const from = Math.floor(Math.random() * o.phones);
    let to = Math.floor(Math.random() * (o.phones - 1));
    if (to >= from) to++;
    const ca = adapterOf(from);
    const ea = adapterOf(to);
    const t = now();
    const pr = phones[from]
      .send({ method: 'INVITE', uri: `sip:${user(to)}@${sip(ca)}`, from: user(from) }, 5000)
      .then((a) => {
        const ok = a?.status === 302;
        calls.push({ t, callerAdapter: ca, calleeAdapter: ea, ok, status: a ? a.status : 'timeout' });
        if (ok) {
          for (const r of restarts)
            if (r.adapter === ea && r.recoveryMs === undefined && r.readyMs !== undefined && t >= r.at + r.readyMs)
              r.recoveryMs = now() - r.at;
        } else if (a === null || a.status === 503 || a.status === 408) reRegister(from);
      });
    inFlight.add(pr);
    void pr.finally(() => inFlight.delete(pr));
  };
  let owed = 0;
  const tickMs = 50;
  const caller = setInterval(() => {
    if (now() >= endAt || stopping()) return;
    owed += (o.rate * tickMs) / 1000;
    for (; owed >= 1; owed--) placeCall();
  }, tickMs);

  // Samples every 10 s.
  const samples: Sample[] = [];
  let lastSampleCalls = 0;
  const sample = () => {
    const done = calls.slice(lastSampleCalls);
    lastSampleCalls = calls.length;
    const daemons: Sample['daemons'] = { bootstrap: usage(boot.proc.pid) };
    adapters.forEach((a, i) => {
      daemons[`adapter ${i}`] = a && a.proc.exitCode === null && a.proc.signalCode === null ? usage(a.proc.pid) : null;
    });
    const s: Sample = { t: now() - S0, attempted: done.length, failed: done.filter((c) => !c.ok).length, daemons };
    samples.push(s);
    const fmt = (u: { rssMiB: number; fds: number } | null) => (u ? `${u.rssMiB.toFixed(0)}M/${u.fds}` : 'down');
    log(
      `t=${sec(s.t).padStart(6)} s  calls ${String(s.attempted).padStart(4)} failed ${String(s.failed).padStart(4)}` +
        `  RSS MiB/fds: boot ${fmt(daemons.bootstrap)}  ` +
        adapters.map((_, i) => `a${i} ${fmt(daemons[`adapter ${i}`])}`).join(' '),
    );
  };
  sample();
  const sampler = setInterval(sample, 10_000);

  // Restarts, round robin, SIGKILL then SIGTERM.
  let next = 0;
  const restarting = new Set<number>();
  const restartOne = async () => {
    const i = next % o.adapters;
    const signal = next % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
    next++;
    if (restarting.has(i)) {
      log(`adapter ${i} is still starting from its last restart: this restart is skipped`);
      return;
    }
    restarting.add(i);
    const old = adapters[i];
    const r: Restart = {
      adapter: i,
      signal,
      at: now(),
      callsUntilRecovery: 0,
      failedUntilRecovery: 0,
      failedUntilNext: 0,
      failedByStatus: {},
      failedCallerOnIt: 0,
      failedCalleeOnIt: 0,
      failedNeither: 0,
    };
    restarts.push(r);
    if (old) {
      const gone = exited(old.proc);
      old.proc.kill(signal);
      const t = setTimeout(() => old.proc.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(t);
    }
    r.exitMs = now() - r.at;
    adapters[i] = undefined;
    for (let attempt = 0; attempt < 5 && !stopping(); attempt++) {
      try {
        adapters[i] = (await startDaemon(`adapter ${i}`, adapterArgs(i), /^adapter sip:(\S+:(\d+))\n/m)).d;
        r.readyMs = now() - r.at;
        readyAt[i] = now();
        break;
      } catch (e) {
        r.startError = (e as Error).message.split('\n').slice(0, 3).join(' | ');
        process.stderr.write(`${(e as Error).message}\n`);
        log(`adapter ${i} failed to start (attempt ${attempt + 1}): ${r.startError}`);
        await new Promise((res) => setTimeout(res, 2000));
      }
    }
    restarting.delete(i);
    log(
      `restart ${restarts.indexOf(r) + 1}: adapter ${i} by ${signal}: exited after ${sec(r.exitMs)} s, ready after ${
        r.readyMs === undefined ? 'never' : `${sec(r.readyMs)} s`
      }`,
    );
  };
  const restartTimes: number[] = [];
  for (let t = S0 + o.restartEvery * 1000; t < endAt - 1000; t += o.restartEvery * 1000) restartTimes.push(t);
  const restartsDone: Promise<void>[] = [];
  for (const t of restartTimes) {
    await new Promise((r) => setTimeout(r, Math.max(0, t - now())));
    if (stopping()) break;
    restartsDone.push(restartOne());
  }
  await new Promise((r) => setTimeout(r, Math.max(0, endAt - now())));
  clearInterval(caller);
  await Promise.all(restartsDone);
  await Promise.all([...inFlight]);
  clearInterval(sampler);
  sample();

  // Per-restart figures: calls sent from the signal until the recovery, and until the next restart.
  for (let k = 0; k < restarts.length; k++) {
    const r = restarts[k];
    const until = r.recoveryMs !== undefined ? r.at + r.recoveryMs : Number.POSITIVE_INFINITY;
    const nextAt = k + 1 < restarts.length ? restarts[k + 1].at : Number.POSITIVE_INFINITY;
    for (const c of calls) {
      if (c.t < r.at) continue;
      if (c.t <= until) {
        r.callsUntilRecovery++;
        if (!c.ok) r.failedUntilRecovery++;
      }
      if (c.t < nextAt && !c.ok) {
        r.failedUntilNext++;
        r.failedByStatus[String(c.status)] = (r.failedByStatus[String(c.status)] ?? 0) + 1;
        if (c.callerAdapter === r.adapter) r.failedCallerOnIt++;
        else if (c.calleeAdapter === r.adapter) r.failedCalleeOnIt++;
        else r.failedNeither++;
      }
    }
  }
  const failed = calls.filter((c) => !c.ok);
  const byStatus: Record<string, number> = {};
  for (const c of failed) byStatus[String(c.status)] = (byStatus[String(c.status)] ?? 0) + 1;
  const rec = restarts.map((r) => r.recoveryMs).filter((x): x is number => x !== undefined);
  const series = (name: string) =>
    samples.map((s) => s.daemons[name]).filter((u): u is { rssMiB: number; fds: number } => u !== null);
  const daemonNames = ['bootstrap', ...adapters.map((_, i) => `adapter ${i}`)];
  const summary = daemonNames.map((name) => {
    const s = series(name);
    return {
      name,
      rssMiBFirst: s[0]?.rssMiB,
      rssMiBLast: s.at(-1)?.rssMiB,
      rssMiBMax: s.length ? Math.max(...s.map((u) => u.rssMiB)) : undefined,
      fdsFirst: s[0]?.fds,
      fdsLast: s.at(-1)?.fds,
      fdsMax: s.length ? Math.max(...s.map((u) => u.fds)) : undefined,
    };
  });
  const result = {
    options: o,
    startedAt: new Date(T0).toISOString(),
    durationS: Number(sec(now() - S0)),
    totals: {
      attempted: calls.length,
      succeeded: calls.length - failed.length,
      failed: failed.length,
      failedByStatus: byStatus,
      restarts: restarts.length,
      reRegistrations,
      recoveryMsMin: rec.length ? Math.min(...rec) : null,
      recoveryMsP50: rec.length ? Math.round(percentile(rec, 50)) : null,
      recoveryMsMax: rec.length ? Math.max(...rec) : null,
      unrecovered: restarts.length - rec.length,
    },
    baseline: {
      what: 'fault-injection soak of issue 17 (8 minutes, 1 bootstrap, 8 adapters, 40 phones, 30 calls/s, 9 restarts)',
      attempted: 14042,
      failed: 0,
      recoveryS: [5.6, 11.3],
    },
    restarts,
    daemons: summary,
    samples,
  };
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(o.out, `${JSON.stringify(result, null, 1)}\n`);

  const t = result.totals;
  log('');
  log(
    '| restart | adapter | signal | exit | ready | recovery | calls until recovery | failed until recovery | failed until next restart (caller on it / callee on it / neither; answers) |',
  );
  log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  restarts.forEach((r, k) => {
    const s = (ms: number | undefined) => (ms === undefined ? 'never' : `${sec(ms)} s`);
    log(
      `| ${k + 1} | ${r.adapter} | ${r.signal} | ${s(r.exitMs)} | ${s(r.readyMs)} | ${s(r.recoveryMs)} | ` +
        `${r.callsUntilRecovery} | ${r.failedUntilRecovery} | ${r.failedUntilNext} (${r.failedCallerOnIt} / ${r.failedCalleeOnIt} / ` +
        `${r.failedNeither}; ${Object.entries(r.failedByStatus)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ')}) |`,
    );
  });
  log('');
  log('| daemon | RSS first | RSS last | RSS max | fds first | fds last | fds max |');
  log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const d of summary)
    log(
      `| ${d.name} | ${d.rssMiBFirst ?? '-'} MiB | ${d.rssMiBLast ?? '-'} MiB | ${d.rssMiBMax ?? '-'} MiB | ` +
        `${d.fdsFirst ?? '-'} | ${d.fdsLast ?? '-'} | ${d.fdsMax ?? '-'} |`,
    );
  log('');
  log('| | this run | baseline (issue 17) |');
  log('| --- | --- | --- |');
  log(`| duration | ${o.minutes} min | 8 min |`);
  log(`| calls succeeded | ${t.succeeded} of ${t.attempted} | 14,042 of 14,042 |`);
  log(`| failed by answer | ${JSON.stringify(byStatus)} | - |`);
  log(`| restarts | ${t.restarts} (${t.unrecovered} not recovered) | 9 |`);
  log(
    `| recovery (signal to first 302 for a callee on it) | ${
      rec.length
        ? `${sec(t.recoveryMsMin ?? 0)}-${sec(t.recoveryMsMax ?? 0)} s, p50 ${sec(t.recoveryMsP50 ?? 0)} s`
        : '-'
    } | 5.6-11.3 s |`,
  );
  log(`| phone re-registrations (after 503/408/no answer) | ${reRegistrations} | - |`);
  log(`\nJSON: ${o.out}`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`soak: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
