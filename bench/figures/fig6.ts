/**
 * Seed 000 Figure 6 (section VI.3): the time to set up a call as a percentage
 * of the call's length, for calls of 1, 3, 5 and 10 minutes, from the seed's
 * 481.03 ms and from our measured call setup times (Figure 4, signed mode,
 * the largest ring measured). Pure arithmetic on measured samples.
 */
import type { FigureOutput } from '../lib/context.ts';
import { notMeasured, type Row } from '../lib/schema.ts';
import { overheadPercent, summarize } from '../lib/summary.ts';
import { renderChart } from '../lib/svg.ts';
import { SEED_FIG4 } from './fig4.ts';

export const CALL_MINUTES = [1, 3, 5, 10];

/** `setupMs`: call setup samples (ms); `label` says where they come from. */
export function runFig6(setupMs: readonly number[], label: string): FigureOutput {
  const rows: Row[] = CALL_MINUTES.map((m) => {
    const measurement = `setup overhead, ${m}-minute call`;
    const seed = overheadPercent(SEED_FIG4.callSetup, m);
    if (setupMs.length === 0) return notMeasured(measurement, '%', seed, 'no call setup samples');
    return {
      measurement,
      unit: '%',
      seed,
      ours: summarize(setupMs.map((x) => overheadPercent(x, m))),
      status: 'derived',
      params: { minutes: m },
    };
  });
  const curve = Array.from({ length: 19 }, (_, i) => 1 + i * 0.5);
  const ours = setupMs.length > 0 ? summarize(setupMs).p50 : Number.NaN;
  const svg = renderChart({
    title: 'Figure 6: call setup as % of call length',
    xLabel: 'call length (minutes)',
    yLabel: 'overhead (%)',
    kind: 'line',
    yScale: 'log',
    series: [
      { name: 'seed (481.03 ms)', seed: true, points: curve.map((m) => ({ x: m, y: overheadPercent(481.03, m) })) },
      {
        name: `ours (p50 ${ours.toPrecision(3)} ms)`,
        points: curve.map((m) => ({ x: m, y: overheadPercent(ours, m) })),
      },
    ],
  });
  return {
    figure: {
      id: 'fig6',
      title: 'Figure 6: overhead in percent of call length',
      source: 'seed 000 section VI.3, Figure 6',
      notes: [
        `Overhead = setup time / call length; ours from ${label} (${setupMs.length} samples, each turned into a percentage).`,
      ],
      rows,
      plot: 'fig6.svg',
    },
    charts: [{ file: 'fig6.svg', svg }],
  };
}
