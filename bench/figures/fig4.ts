/**
 * Seed 000 Figure 4 (section VI.2): registration, Chord lookup of the
 * callee's location, and call setup with 0, 10, 20, 30, 40, 50 running
 * adapters, for k=4 n=8 and k=6 n=10, 100 iterations each.
 *
 * On loopback with the real daemons: a bootstrap server and adapters on TLS
 * 1.3 RPC sockets, phones speaking SIP over UDP.
 * - registration: a phone's REGISTER for a new user at its adapter until the
 *   200 OK (the adapter makes the user's key pair, sends SECP2PSIP REGISTER;
 *   the bootstrap splits the key and stores n pieces and the location in the
 *   ring, seed IV.2);
 * - lookup: the caller's adapter gets the callee's `Username` record from the
 *   ring (seed: "retrieval of the contact information");
 * - call setup: INVITE sent by the phone until the 302 arrives (seed VI.2),
 *   with both adapters verifying through the ring, signed and protected mode.
 */
import type { RunningAdapter } from '../../src/secp2psip/daemon.ts';
import { type FigureContext, type FigureOutput, timed } from '../lib/context.ts';
import { LoopbackOverlay, sipDest } from '../lib/loopback-overlay.ts';
import type { Row } from '../lib/schema.ts';
import { SipProbe } from '../lib/sip-probe.ts';
import { summarize } from '../lib/summary.ts';
import { renderChart, type Series } from '../lib/svg.ts';

/** Seed 000 VI.2 (the values its text gives; the rest are only drawn in its Figure 4). */
export const SEED_FIG4 = {
  registration: { 'k=4 n=8': { 0: 752.48, 50: 1005.8 }, 'k=6 n=10': { 50: 1219.66 } } as Record<
    string,
    Record<number, number>
  >,
  lookup: 169.53,
  callSetup: 481.03,
};

const CONFIGS = [
  { k: 4, n: 8 },
  { k: 6, n: 10 },
];

type Op = 'registration' | 'lookup' | 'call setup, signed' | 'call setup, protected';
const OPS: Op[] = ['registration', 'lookup', 'call setup, signed', 'call setup, protected'];

function seedFor(op: Op, kn: string, size: number): number | null {
  if (op === 'registration') return SEED_FIG4.registration[kn]?.[size] ?? null;
  if (op === 'lookup') return size >= 10 ? SEED_FIG4.lookup : null;
  if (op === 'call setup, signed') return SEED_FIG4.callSetup;
  return null;
}

export async function runFig4(ctx: FigureContext): Promise<FigureOutput> {
  const sizes = ctx.quick ? [0, 10] : [0, 10, 20, 30, 40, 50];
  const iterations = ctx.quick ? 10 : 100;
  const rows: Row[] = [];
  const samples: Record<string, number[]> = {};
  const failures: string[] = [];
  const t0 = performance.now();
  for (const { k, n } of CONFIGS) {
    const kn = `k=${k} n=${n}`;
    const overlay = await LoopbackOverlay.start({ k, n });
    const probe = await SipProbe.open();
    const calleePhone = await SipProbe.open();
    try {
      // The measuring adapters: callers in each security mode and the callee's adapter.
      const signed = await overlay.addAdapter({ mode: 'signed' });
      const prot = await overlay.addAdapter({ mode: 'protected' });
      const callee = await overlay.addAdapter();
      const measuring = overlay.adapters.length;
      await must(probe.register(sipDest(signed), 'alice'), 'register alice');
      await must(probe.register(sipDest(prot), 'carol'), 'register carol');
      await must(calleePhone.register(sipDest(callee), 'bob'), 'register bob');
      for (const size of sizes) {
        const grow = ctx.bar(`fig4 ${kn}: ring to ${size} other adapters`, size);
        await overlay.growTo(measuring + size, () => grow.update(overlay.adapters.length - measuring));
        grow.done();
        await overlay.settle();
        const bar = ctx.bar(`fig4 ${kn}, ${size} adapters`, iterations * OPS.length);
        let done = 0;
        const tick = () => bar.update(++done);
        const got: Record<Op, number[]> = {
          registration: [],
          lookup: [],
          'call setup, signed': [],
          'call setup, protected': [],
        };
        for (let i = 0; i < iterations; i++) {
          const r = await probe.register(sipDest(signed), `u${k}${n}s${size}i${i}`);
          if (r.status === 200) got.registration.push(r.ms);
          else failures.push(`registration ${kn} ${size}: ${r.status}`);
          tick();
        }
        for (let i = 0; i < iterations; i++) {
          const r = await timed(() => signed.node.ring.get('bob'));
          if (r.value.ok) got.lookup.push(r.ms);
          else failures.push(`lookup ${kn} ${size}: ${r.value.reason}`);
          tick();
        }
        for (const [op, from, who] of [
          ['call setup, signed', signed, 'alice'],
          ['call setup, protected', prot, 'carol'],
        ] as [Op, RunningAdapter, string][]) {
          for (let i = 0; i < iterations; i++) {
            const r = await probe.invite(sipDest(from), who, 'bob');
            if (r.status === 302) got[op].push(r.ms);
            else failures.push(`${op} ${kn} ${size}: ${r.status}`);
            tick();
          }
        }
        bar.done();
        for (const op of OPS) {
          const key = `${op}|${kn}|${size}`;
          samples[key] = got[op];
          rows.push(row(op, kn, size, got[op], iterations));
        }
      }
    } finally {
      await probe.close();
      await calleePhone.close();
      await overlay.close();
    }
  }
  const notes = [
    'N = adapters running besides the three measuring ones (two callers, one callee) and the bootstrap; the seed counted running SecP2PSIP nodes.',
    `${iterations} iterations per point; real daemons on loopback (TLS 1.3 RPC between ring members, SIP over UDP from a bare phone).`,
    'Registration: REGISTER of a new user until 200 OK, including key generation, SECP2PSIP REGISTER, split and storage of n pieces and the location record.',
    'Call setup: INVITE sent until 302 received (seed VI.2); every call rebuilds and verifies the callee key from the ring (robust mode: all n pieces in parallel).',
    "Each side reads the n+1 records straight from the holders its ring view names (one FETCH per holder, bootstrap signature checked on every record), and in signed mode the caller sends the INVITE once the callee's Username record is in, before the rebuild; the REDIRECT is accepted only after it.",
  ];
  if (failures.length > 0)
    notes.push(
      `${failures.length} operations failed and are left out: ${[...new Set(failures)].slice(0, 5).join('; ')}`,
    );
  return {
    figure: {
      id: 'fig4',
      title: 'Figure 4: registration, lookup and call setup vs running adapters',
      source: 'seed 000 section VI.2, Figure 4',
      notes,
      rows,
      plot: 'fig4.svg',
      elapsedMs: performance.now() - t0,
    },
    charts: [{ file: 'fig4.svg', svg: chart(rows, sizes) }],
    samples,
  };
}

async function must(p: Promise<{ status: number }>, what: string): Promise<void> {
  const r = await p;
  if (r.status !== 200) throw new Error(`${what}: SIP ${r.status}`);
}

function row(op: Op, kn: string, size: number, got: number[], iterations: number): Row {
  const measurement = `${op}, ${kn}, ${size} adapters`;
  const seed = seedFor(op, kn, size);
  if (got.length === 0)
    return { measurement, unit: 'ms', seed, ours: null, status: 'not measured yet', note: 'every attempt failed' };
  return {
    measurement,
    unit: 'ms',
    seed,
    ours: summarize(got),
    status: 'measured',
    params: { op, kn, size, iterations },
  };
}

/** The Figure 4 plot from its rows (exported so a saved run can be drawn again). */
export function chart(rows: Row[], sizes: number[]): string {
  const series: Series[] = [];
  for (const op of OPS)
    for (const { k, n } of CONFIGS) {
      const kn = `k=${k} n=${n}`;
      const pts = rows
        .filter((r) => r.params?.op === op && r.params?.kn === kn && r.ours)
        .map((r) => ({ x: Number(r.params?.size), y: r.ours!.p50, hi: r.ours!.p99 }));
      if (pts.length > 0) series.push({ name: `ours: ${op.replace('call setup', 'call')}, ${kn}`, points: pts });
    }
  const lo = sizes[0];
  const hi = sizes[sizes.length - 1];
  series.push(
    {
      name: 'seed: registration k=4 n=8',
      seed: true,
      points: [
        { x: 0, y: 752.48 },
        { x: 50, y: 1005.8 },
      ],
    },
    { name: 'seed: registration k=6 n=10', seed: true, points: [{ x: 50, y: 1219.66 }] },
    {
      name: 'seed: Chord lookup',
      seed: true,
      points: [
        { x: Math.max(10, lo), y: 169.53 },
        { x: Math.max(50, hi), y: 169.53 },
      ],
    },
    {
      name: 'seed: call setup',
      seed: true,
      points: [
        { x: lo, y: 481.03 },
        { x: Math.max(50, hi), y: 481.03 },
      ],
    },
  );
  return renderChart({
    title: 'Figure 4: SecP2PSIP operations vs running adapters (p50, whisker to p99)',
    xLabel: 'running adapters (N)',
    yLabel: 'time (ms)',
    kind: 'line',
    yScale: 'log',
    series,
    width: 980,
    height: 520,
  });
}
