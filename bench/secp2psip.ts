/**
 * SecP2PSIP end to end on loopback, against seed 000 section VI: 50 adapters
 * (TLS ring, UDP SIP) and one bootstrap in this process, k=6 n=10.
 *
 * - registration: phone REGISTER to 200 OK, the user's first registration
 *   (the adapter registers the user with the bootstrap, which splits the key
 *   and stores n pieces plus the location record in the ring);
 * - call setup: phone INVITE to phone receives the verified 302, signed and
 *   protected mode (same overlay, mode switched), after a warm-up so links
 *   are open as in a running overlay; CPU time per setup summed over every
 *   node (all run in this process), so busy machines stay comparable;
 * - setups per second through one adapter pair, driven by sipp (UAC in its
 *   own process, INVITE -> 302 -> ACK): once with the adapters' reuse of
 *   recently verified users (the deployed default), once with every call
 *   verified through the ring (both keys fetched and checked on every call).
 * - first calls: the calls right after registration (links, ring view and
 *   signature memories cold) against the same calls once warm.
 *
 * Run: node --import tsx bench/secp2psip.ts [--adapters 50] [--calls 200] [--sipp-rate 600] [--sipp-verified-rate 2000]
 *   [--sipp-seconds 5] [--no-sipp] [--no-pool] [--cpu-prof FILE] [--cpu-prof-cold FILE] [--cpu-prof-sipp FILE]
 * (`--cpu-prof`: a V8 CPU profile of the warm no-reuse signed setups, for Chrome DevTools; `--cpu-prof-cold`:
 * one of the first calls right after registration; `--cpu-prof-sipp`: one of the sipp run with every call
 * verified through the ring; `--no-pool`: every call's signature checks and signatures on the thread, as without
 * secp2psip/call-verify.ts.)
 * Writes bench/results/secp2psip.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SecurityMode } from '../src/secp2psip/call-common.ts';
import { fastStats } from '../src/rpc/cbor-fast.ts';
import { offThread } from '../src/secp2psip/call-verify.ts';
import { DEFAULT_VERIFIED_CACHE_MS } from '../src/secp2psip/daemon.ts';
import { LocalOverlay, sipPeer, summarizeCalls } from '../src/harness/local-overlay.ts';
import { mean, percentile } from '../src/util/stats.ts';
import { invite302Scenario, runSippWithStats } from './lib/sipp.ts';

export interface Secp2psipBenchOptions {
  adapters?: number;
  k?: number;
  n?: number;
  /** Timed call setups per mode. */
  calls?: number;
  warmup?: number;
  /** sipp offered rate (calls/s) and duration; `sippRate: 0` skips sipp. */
  sippRate?: number;
  /** sipp offered rate when every call is verified through the ring (default 2,000/s, the target). */
  sippVerifiedRate?: number;
  /** Write a V8 CPU profile of the warm no-reuse signed setups here. */
  cpuProfile?: string;
  /** Write a V8 CPU profile of the first calls (right after registration) here. */
  cpuProfileCold?: string;
  /** Write a V8 CPU profile of the sipp run with every call verified through the ring here. */
  cpuProfileSipp?: string;
  /** Keep every call's signature checks on the thread (call-verify.ts), to measure what the worker pool gives. */
  noPool?: boolean;
  sippSeconds?: number;
  log?: (line: string) => void;
}

export interface Distribution {
  count: number;
  failed: number;
  p50: number;
  p99: number;
  mean: number;
}

export interface SetupFigures extends Distribution {
  /** CPU time of the whole process (every node) per call setup, ms. */
  cpuMsPerSetup: number;
  /** RPCs sent by every adapter per call setup (ring maintenance running meanwhile included). */
  rpcsPerSetup: number;
  /** The same per RPC method (every node, the bootstrap included). */
  rpcsPerSetupByMethod: Record<string, number>;
  /** INVITE and REDIRECT signature checks sent to the worker pool per setup (call-verify.ts). */
  offThreadChecksPerSetup: number;
  /** INVITE and REDIRECT signatures made on the worker pool per setup (call-verify.ts signCall). */
  offThreadSignaturesPerSetup: number;
}

export interface SippFigures {
  offeredPerSecond: number;
  achievedPerSecond: number;
  successful: number;
  failed: number;
  seconds: number;
  /** Per successful call: signature checks and signatures made on the worker pool (the rest on the thread). */
  offThreadChecksPerCall: number;
  offThreadSignaturesPerCall: number;
}

export interface Secp2psipBenchResult {
  bench: 'secp2psip';
  date: string;
  adapters: number;
  k: number;
  n: number;
  machine: { cpus: number; cpu: string; loadavg1: number; node: string };
  startMs: number;
  registrationMs: Distribution;
  /**
   * Repeat calls (verified users reused) and calls with no reuse (every setup fetches both keys through the
   * ring): right after registration (links and signature checks still cold), and again once warm.
   */
  setupMs: {
    signed: SetupFigures;
    protected: SetupFigures;
    signedUncached: SetupFigures;
    protectedUncached: SetupFigures;
    signedUncachedWarm: SetupFigures;
    protectedUncachedWarm: SetupFigures;
  };
  sipp: SippFigures | null;
  /** RPC payloads written and read by the direct CBOR path and by cborg, over the whole run (rpc/cbor-fast.ts). */
  codec: typeof fastStats;
  /** sipp again with every call verified through the ring (no reuse of verified users). */
  sippVerified: SippFigures | null;
  /**
   * Each user's first call, right after registration (signed, no reuse: user i calls user i+1 once), and
   * the same calls again once warm; `ratio` is p50 first over p50 warm.
   */
  firstCalls: { cold: Distribution; warm: Distribution; ratio: number };
  seed: { registrationMs: number; setupMs: number };
  targets: {
    registrationMsP50: number;
    setupMsP50Signed: number;
    setupMsP50Protected: number;
    /** Through one adapter pair, every call verified through the ring. */
    setupsPerSecond: number;
    firstOverWarm: number;
  };
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

function pick(d: Distribution): Distribution {
  return { count: d.count, failed: d.failed, p50: d.p50, p99: d.p99, mean: d.mean };
}

function dist(ms: number[], failed: number): Distribution {
  return { count: ms.length, failed, p50: r3(percentile(ms, 50)), p99: r3(percentile(ms, 99)), mean: r3(mean(ms)) };
}

/** Count the RPCs every node sends, per method, until `stop`. */
function countRpcs(overlay: LocalOverlay): { stop(): Map<string, number> } {
  const counts = new Map<string, number>();
  const eps = [overlay.boot.server.endpoint, ...overlay.adapters.map((a) => a.node.endpoint)];
  const origs = eps.map((ep) => {
    const orig = ep.request;
    ep.request = (to, method, payload, o) => {
      counts.set(method, (counts.get(method) ?? 0) + 1);
      return orig.call(ep, to, method, payload, o);
    };
    return orig;
  });
  return {
    stop: () => {
      eps.forEach((ep, i) => {
        ep.request = origs[i];
      });
      return counts;
    },
  };
}

/** A V8 CPU profile of `run`, written to `file` (for Chrome DevTools); without a file, just `run`. */
async function profiled<T>(file: string | undefined, run: () => Promise<T>): Promise<T> {
  if (!file) return run();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await run();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  }
}

/** `cacheMs` 0: every setup fetches and rebuilds both keys through the ring (the seed's flow). */
async function timedSetups(
  overlay: LocalOverlay,
  mode: SecurityMode,
  cacheMs: number,
  calls: number,
  warmup: number,
  cpuProfile?: string,
): Promise<SetupFigures> {
  for (const a of overlay.adapters) {
    a.node.mode = mode;
    a.node.verified.cacheMs = cacheMs;
  }
  await overlay.placeCalls(warmup);
  const sent = () => overlay.adapters.reduce((n, a) => n + a.node.endpoint.stats.requestsSent, 0);
  const rpc0 = sent();
  const pool0 = offThread.checks;
  const signed0 = offThread.signatures;
  const byMethod = countRpcs(overlay);
  const cpu0 = process.cpuUsage();
  const samples = await profiled(cpuProfile, () => overlay.placeCalls(calls));
  const cpu = process.cpuUsage(cpu0);
  const methods = byMethod.stop();
  const rpcs = sent() - rpc0;
  const s = summarizeCalls(samples);
  const ok = samples.filter((x) => x.status === 302).map((x) => x.ms);
  const per = Math.max(1, samples.length);
  return {
    ...dist(ok, s.failed),
    cpuMsPerSetup: r3((cpu.user + cpu.system) / 1000 / per),
    rpcsPerSetup: r3(rpcs / per),
    offThreadChecksPerSetup: r3((offThread.checks - pool0) / per),
    offThreadSignaturesPerSetup: r3((offThread.signatures - signed0) / per),
    rpcsPerSetupByMethod: Object.fromEntries([...methods].sort().map(([m, n]) => [m, r3(n / per)])),
  };
}

/** sipp as the caller's phone: INVITE sip:<callee>@<caller's adapter>, expect the verified 302, ACK it. */
async function runSipp(
  o: { caller: string; callee: string; host: string; port: number; rate: number; seconds: number },
  dir: string,
): Promise<SippFigures> {
  const sf = join(dir, 'invite-302.xml');
  writeFileSync(sf, invite302Scenario(o.caller));
  const stf = join(dir, 'sipp.csv');
  const calls = Math.round(o.rate * o.seconds);
  const args = ['-sf', sf, '-s', o.callee, '-r', String(o.rate), '-rp', '1000', '-m', String(calls)];
  args.push('-l', String(Math.max(1000, o.rate)), '-i', o.host, '-p', '0', '-t', 'u1', '-nostdin');
  args.push('-trace_stat', '-stf', stf, '-fd', '1', '-timeout', `${o.seconds * 4 + 30}s`, `${o.host}:${o.port}`);
  const checks0 = offThread.checks;
  const signed0 = offThread.signatures;
  const run = await runSippWithStats(args, stf, dir);
  const successful = run.col('SuccessfulCall(C)');
  const per = Math.max(1, successful);
  return {
    offeredPerSecond: o.rate,
    achievedPerSecond: Math.round(successful / run.seconds),
    successful,
    failed: run.col('FailedCall(C)'),
    seconds: r3(run.seconds),
    offThreadChecksPerCall: r3((offThread.checks - checks0) / per),
    offThreadSignaturesPerCall: r3((offThread.signatures - signed0) / per),
  };
}

/** The whole measurement; returns the figures (the harness imports this). */
export async function runSecp2psipBench(opts: Secp2psipBenchOptions = {}): Promise<Secp2psipBenchResult> {
  const adapters = opts.adapters ?? 50;
  const k = opts.k ?? 6;
  const n = opts.n ?? 10;
  const calls = opts.calls ?? 200;
  const warmup = opts.warmup ?? adapters;
  const sippRate = opts.sippRate ?? 600;
  const log = opts.log ?? (() => {});
  offThread.enabled = !opts.noPool;
  const dir = mkdtempSync(join(tmpdir(), 'secp2psip-bench-'));
  const t0 = performance.now();
  const overlay = await LocalOverlay.start({
    adapters,
    dataDir: join(dir, 'overlay'),
    k,
    n,
    onAdapter: (i) => {
      if ((i + 1) % 10 === 0) log(`  ${i + 1}/${adapters} adapters up`);
    },
  });
  try {
    const startMs = Math.round(performance.now() - t0);
    log(`overlay up in ${startMs} ms; registering ${adapters} phones`);
    const reg = await overlay.registerPhones();
    log(`registered; ${warmup} warm-up calls, then ${calls} timed setups per mode`);
    // Repeat calls: every pair was verified in the warm-up and stays cached for the whole phase
    // (with the deployed 30 s reuse, how many calls are repeats depends on the call pattern).
    const C = Math.max(DEFAULT_VERIFIED_CACHE_MS, 600_000);
    const cold = await timedSetups(overlay, 'signed', 0, overlay.users.length, 0, opts.cpuProfileCold);
    const setupMs = {
      signedUncached: await timedSetups(overlay, 'signed', 0, calls, Math.min(warmup, 10)),
      protectedUncached: await timedSetups(overlay, 'protected', 0, calls, Math.min(warmup, 10)),
      signed: await timedSetups(overlay, 'signed', C, calls, warmup),
      protected: await timedSetups(overlay, 'protected', C, calls, warmup),
      signedUncachedWarm: await timedSetups(overlay, 'signed', 0, calls, 0, opts.cpuProfile),
      protectedUncachedWarm: await timedSetups(overlay, 'protected', 0, calls, 0),
    };
    const warm = await timedSetups(overlay, 'signed', 0, overlay.users.length, 0);
    let sipp: SippFigures | null = null;
    let sippVerified: SippFigures | null = null;
    const haveSipp = spawnSync('sh', ['-c', 'command -v sipp'], { stdio: 'ignore' }).status === 0;
    if (sippRate > 0 && haveSipp && overlay.users.length >= 2) {
      const [caller, callee] = overlay.users;
      const peer = sipPeer(caller.adapter);
      const sippRun = (cacheMs: number, rate: number) => {
        for (const a of overlay.adapters) a.node.verified.cacheMs = cacheMs;
        const what = cacheMs ? 'reusing verified users' : 'every call verified through the ring';
        log(`sipp: ${rate} INVITE/s for ${opts.sippSeconds ?? 5} s, ${caller.name} -> ${callee.name}, ${what}`);
        return runSipp(
          {
            caller: caller.name,
            callee: callee.name,
            host: peer.address,
            port: peer.port,
            rate,
            seconds: opts.sippSeconds ?? 5,
          },
          dir,
        );
      };
      for (const a of overlay.adapters) a.node.mode = 'signed';
      sipp = await sippRun(DEFAULT_VERIFIED_CACHE_MS, sippRate);
      sippVerified = await profiled(opts.cpuProfileSipp, () => sippRun(0, opts.sippVerifiedRate ?? 2000));
    } else if (sippRate > 0) log('sipp is not installed: no throughput figure');
    return {
      bench: 'secp2psip',
      date: new Date().toISOString(),
      adapters,
      k,
      n,
      machine: {
        cpus: cpus().length,
        cpu: cpus()[0]?.model.trim() ?? 'unknown',
        loadavg1: r3(loadavg()[0]),
        node: process.version,
      },
      startMs,
      registrationMs: dist(reg.ms, reg.failed),
      setupMs,
      sipp,
      sippVerified,
      codec: { ...fastStats },
      firstCalls: { cold: pick(cold), warm: pick(warm), ratio: r3(cold.p50 / warm.p50) },
      seed: { registrationMs: 1219.66, setupMs: 481.03 },
      targets: {
        registrationMsP50: 10,
        setupMsP50Signed: 2,
        setupMsP50Protected: 3,
        setupsPerSecond: 2000,
        firstOverWarm: 2,
      },
    };
  } finally {
    await overlay.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function table(r: Secp2psipBenchResult): string {
  const row = (what: string, ours: string, target: string, seed: string, met: boolean | null) =>
    `${what.padEnd(44)} | ${ours.padStart(12)} | ${target.padStart(9)} | ${seed.padStart(10)} | ${met === null ? '-' : met ? 'yes' : 'no'}`;
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const lines = [
    `SecP2PSIP on loopback: ${r.adapters} adapters, k=${r.k} n=${r.n}, ${r.machine.cpus} cores (${r.machine.cpu}), load average ${r.machine.loadavg1}`,
    '',
    `${'measurement'.padEnd(44)} | ${'ours'.padStart(12)} | ${'target'.padStart(9)} | ${'seed 000'.padStart(10)} | met`,
    `${'-'.repeat(44)}-|-${'-'.repeat(12)}-|-${'-'.repeat(9)}-|-${'-'.repeat(10)}-|----`,
    row('registration p50', ms(r.registrationMs.p50), '10 ms', '1219.66 ms', r.registrationMs.p50 <= 10),
    row('registration p99', ms(r.registrationMs.p99), '', '', null),
    row('setup p50, signed, repeat call', ms(r.setupMs.signed.p50), '', '481.03 ms', null),
    row('setup p99, signed, repeat call', ms(r.setupMs.signed.p99), '', '', null),
    row('setup p50, protected, repeat call', ms(r.setupMs.protected.p50), '', '481.03 ms', null),
    row('setup p99, protected, repeat call', ms(r.setupMs.protected.p99), '', '', null),
    row('CPU per setup (all nodes), signed', ms(r.setupMs.signed.cpuMsPerSetup), '', '', null),
    row('CPU per setup, protected', ms(r.setupMs.protected.cpuMsPerSetup), '', '', null),
    row('setup p50, signed, no reuse', ms(r.setupMs.signedUncached.p50), '', '481.03 ms', null),
    row('setup p99, signed, no reuse', ms(r.setupMs.signedUncached.p99), '', '', null),
    row('setup p50, protected, no reuse', ms(r.setupMs.protectedUncached.p50), '', '481.03 ms', null),
    row('CPU per setup, signed, no reuse', ms(r.setupMs.signedUncached.cpuMsPerSetup), '', '', null),
    row('RPCs per setup, signed, no reuse', r.setupMs.signedUncached.rpcsPerSetup.toFixed(1), '', '', null),
    row('RPCs per setup, protected, no reuse', r.setupMs.protectedUncached.rpcsPerSetup.toFixed(1), '', '', null),
    row(
      'setup p50, signed, no reuse, warm',
      ms(r.setupMs.signedUncachedWarm.p50),
      '2 ms',
      '481.03 ms',
      r.setupMs.signedUncachedWarm.p50 <= 2,
    ),
    row('setup p99, signed, no reuse, warm', ms(r.setupMs.signedUncachedWarm.p99), '', '', null),
    row(
      'setup p50, protected, no reuse, warm',
      ms(r.setupMs.protectedUncachedWarm.p50),
      '3 ms',
      '',
      r.setupMs.protectedUncachedWarm.p50 <= 3,
    ),
    row('setup p99, protected, no reuse, warm', ms(r.setupMs.protectedUncachedWarm.p99), '', '', null),
    row('first call per user p50, right after reg.', ms(r.firstCalls.cold.p50), '', '', null),
    row('first call per user p99', ms(r.firstCalls.cold.p99), '', '', null),
    row('same calls once warm p50', ms(r.firstCalls.warm.p50), '', '', null),
    row('first call / warm (p50)', `${r.firstCalls.ratio.toFixed(2)}x`, '2x', '', r.firstCalls.ratio <= 2),
    row('CPU per setup, no reuse, warm, signed', ms(r.setupMs.signedUncachedWarm.cpuMsPerSetup), '', '', null),
    row('CPU per setup, no reuse, warm, protected', ms(r.setupMs.protectedUncachedWarm.cpuMsPerSetup), '', '', null),
    row('RPCs per setup, no reuse, warm, signed', r.setupMs.signedUncachedWarm.rpcsPerSetup.toFixed(1), '', '', null),
    ...Object.entries(r.setupMs.signedUncachedWarm.rpcsPerSetupByMethod).map(([m, n]) =>
      row(`  of them (all nodes) ${m}`, n.toFixed(2), '', '', null),
    ),
    r.sipp
      ? row(
          `setups/s via sipp, reuse (offered ${r.sipp.offeredPerSecond}/s)`,
          `${r.sipp.achievedPerSecond}/s`,
          '',
          '',
          null,
        )
      : row('setups/s via sipp', 'not run', '', '', null),
    r.sippVerified
      ? row(
          `setups/s via sipp, no reuse (offered ${r.sippVerified.offeredPerSecond}/s)`,
          `${r.sippVerified.achievedPerSecond}/s`,
          '2000/s',
          '',
          r.sippVerified.achievedPerSecond >= 2000,
        )
      : row('setups/s via sipp, no reuse', 'not run', '2000/s', '', null),
    '',
    `failures: registration ${r.registrationMs.failed}, signed ${r.setupMs.signed.failed}, protected ${r.setupMs.protected.failed}, no reuse ${r.setupMs.signedUncached.failed + r.setupMs.protectedUncached.failed + r.setupMs.signedUncachedWarm.failed + r.setupMs.protectedUncachedWarm.failed}, sipp ${r.sipp?.failed ?? '-'} / ${r.sippVerified?.failed ?? '-'}`,
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const num = (name: string, dflt: number) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const r = await runSecp2psipBench({
    adapters: num('adapters', 50),
    calls: num('calls', 200),
    sippRate: argv.includes('--no-sipp') ? 0 : num('sipp-rate', 600),
    sippVerifiedRate: num('sipp-verified-rate', 2000),
    cpuProfile: argv.includes('--cpu-prof') ? argv[argv.indexOf('--cpu-prof') + 1] : undefined,
    cpuProfileCold: argv.includes('--cpu-prof-cold') ? argv[argv.indexOf('--cpu-prof-cold') + 1] : undefined,
    cpuProfileSipp: argv.includes('--cpu-prof-sipp') ? argv[argv.indexOf('--cpu-prof-sipp') + 1] : undefined,
    noPool: argv.includes('--no-pool'),
    sippSeconds: num('sipp-seconds', 5),
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(`${table(r)}\n`);
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'secp2psip.json'), `${JSON.stringify(r, null, 2)}\n`);
  process.stdout.write(`\nwrote bench/results/secp2psip.json\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`bench/secp2psip: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
