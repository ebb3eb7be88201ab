/**
 * Throughput on loopback (the seed reports none): SECP2PSIP registrations
 * per second at one bootstrap, call setups per second through one adapter
 * pair driven by sipp (INVITE, 302, ACK; with every call rebuilding both keys,
 * then with the default reuse of verified users), and Chord lookups per second
 * on one adapter. Closed loops: a fixed number of operations in flight.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FigureContext, FigureOutput } from '../lib/context.ts';
import { LoopbackOverlay, sipDest } from '../lib/loopback-overlay.ts';
import { notMeasured, type Row } from '../lib/schema.ts';
import { DEFAULT_VERIFIED_CACHE_MS } from '../../src/secp2psip/daemon.ts';
import { SipProbe } from '../lib/sip-probe.ts';
import { runSippWithStats } from '../lib/sipp.ts';
import { perSecond, single } from '../lib/summary.ts';
import { renderChart } from '../lib/svg.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCENARIO = join(ROOT, 'test', 'fixtures', 'sipp', 'invite-302.xml');

/** Run `op` with `inFlight` workers for `ms`; returns completed and failed counts and the elapsed time. */
async function closedLoop(inFlight: number, ms: number, op: (i: number) => Promise<boolean>) {
  let ok = 0;
  let failed = 0;
  let next = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const good = await op(next++).catch(() => false);
        if (good) ok++;
        else failed++;
      }
    }),
  );
  return { ok, failed, elapsedMs: performance.now() - t0 };
}

interface SippOutcome {
  successful: number;
  failed: number;
  elapsedMs: number;
}

async function runSipp(port: number, calls: number, inFlight: number, dir: string): Promise<SippOutcome> {
  const csv = join(dir, 'callee.csv');
  writeFileSync(csv, 'SEQUENTIAL\nbob\n');
  const stf = join(dir, 'stat.csv');
  const args = [
    ...['-sf', SCENARIO, '-inf', csv, '-r', '5000', '-rp', '1000', '-l', String(inFlight), '-m', String(calls)],
    ...['-i', '127.0.0.1', '-p', '0', '-t', 'u1', '-nostdin', '-trace_stat', '-stf', stf, '-fd', '1'],
    ...['-timeout', '120s', `127.0.0.1:${port}`],
  ];
  const run = await runSippWithStats(args, stf, dir);
  return { successful: run.col('SuccessfulCall(C)'), failed: run.col('FailedCall(C)'), elapsedMs: run.seconds * 1000 };
}

export async function runThroughput(ctx: FigureContext): Promise<FigureOutput> {
  const t0 = performance.now();
  const seconds = ctx.quick ? 2 : 10;
  const others = ctx.quick ? 4 : 20;
  const rows: Row[] = [];
  const notes: string[] = [];
  const overlay = await LoopbackOverlay.start({ k: 4, n: 8 });
  const phone = await SipProbe.open();
  const dir = mkdtempSync(join(tmpdir(), 'secp2psip-sipp-'));
  try {
    const grow = ctx.bar(`throughput: ring of ${others + 2} adapters`, others + 2);
    await overlay.growTo(others + 2, () => grow.update(overlay.adapters.length));
    grow.done();
    await overlay.settle();
    const [A, B, ...rest] = overlay.adapters;
    const reg = await phone.register(sipDest(B), 'bob');
    if (reg.status !== 200) throw new Error(`bob's phone could not register: ${reg.status}`);
    await A.node.ensureUser('caller');

    ctx.say(`throughput: registrations for ${seconds} s`);
    const regs = await closedLoop(8, seconds * 1000, async (i) => {
      const a = rest[i % rest.length];
      await a.node.ensureUser(`tp${i}`);
      return true;
    });
    rows.push({
      measurement: 'SECP2PSIP registrations/s at one bootstrap (8 in flight from several adapters)',
      unit: '/s',
      seed: null,
      ours: single(perSecond(regs.ok, regs.elapsedMs)),
      status: 'measured',
      higherIsBetter: true,
      params: { ok: regs.ok, failed: regs.failed, seconds },
    });

    ctx.say(`throughput: lookups for ${seconds} s`);
    const looks = await closedLoop(16, seconds * 1000, async () => (await A.node.ring.get('bob')).ok);
    rows.push({
      measurement: "Chord lookups/s on one adapter (callee's location, 16 in flight)",
      unit: '/s',
      seed: null,
      ours: single(perSecond(looks.ok, looks.elapsedMs)),
      status: 'measured',
      higherIsBetter: true,
      params: { ok: looks.ok, failed: looks.failed, seconds },
    });

    // Two sipp runs: every call rebuilding both keys from the ring (Figure 4's flow), then with the
    // adapters' default reuse of verified users (what a deployed pair does for repeat callees).
    for (const [what, cacheMs] of [
      ['every call rebuilds both keys', 0],
      [`verified users reused ${DEFAULT_VERIFIED_CACHE_MS / 1000} s, the default`, DEFAULT_VERIFIED_CACHE_MS],
    ] as const) {
      const measurement = `call setups/s through one adapter pair (sipp: INVITE, 302, ACK; 16 in flight), ${what}`;
      for (const a of [A, B]) a.node.verified.cacheMs = cacheMs;
      ctx.say(`throughput: call setups with sipp, ${what}`);
      try {
        const calls = ctx.quick ? 300 : 2000;
        const s = await runSipp(sipDest(A).port, calls, 16, dir);
        if (s.successful === 0)
          rows.push(notMeasured(measurement, '/s', null, `sipp completed no call (${s.failed} failed)`));
        else
          rows.push({
            measurement,
            unit: '/s',
            seed: null,
            ours: single(perSecond(s.successful, s.elapsedMs)),
            status: 'measured',
            higherIsBetter: true,
            params: { successful: s.successful, failed: s.failed, calls, cacheMs },
          });
      } catch (e) {
        rows.push(notMeasured(measurement, '/s', null, `sipp did not run: ${(e as Error).message}`));
      }
    }
  } finally {
    await phone.close();
    await overlay.close();
    rmSync(dir, { recursive: true, force: true });
  }
  notes.push(
    `One bootstrap (k=4 n=8) and ${others + 2} adapters in one process on loopback; every call setup rebuilds and verifies the callee key from the ring. Single run each: p99 is not meaningful.`,
    'The sipp rate includes sipp start-up and ends with its last call; failed counts are in the JSON.',
  );
  const svg = renderChart({
    title: 'Throughput on loopback',
    xLabel: 'operation',
    yLabel: 'per second',
    kind: 'bar',
    yScale: 'log',
    categories: ['registrations', 'lookups', 'call setups'],
    series: [
      {
        name: 'ours',
        points: rows
          .filter((r) => r.ours)
          .map((r) => ({
            x: r.measurement.startsWith('SECP2PSIP')
              ? 'registrations'
              : r.measurement.startsWith('Chord')
                ? 'lookups'
                : 'call setups',
            y: r.ours!.p50,
          })),
      },
    ],
  });
  return {
    figure: {
      id: 'throughput',
      title: 'Throughput: registrations, call setups, lookups per second',
      source: 'not in the seeds (they report latency only)',
      notes,
      rows,
      plot: 'throughput.svg',
      elapsedMs: performance.now() - t0,
    },
    charts: [{ file: 'throughput.svg', svg }],
  };
}
