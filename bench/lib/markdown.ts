/**
 * bench/results/latest.md: the machine at the top, then one table per figure
 * with the columns measurement | seed's value | ours p50 | ours p99 | ratio
 * (seed / ours). Rows not measured say so; rows emulated or simulated carry
 * that word next to the measurement.
 */
import type { BenchResult, Figure, Row, Unit } from './schema.ts';
import { ratio } from './summary.ts';

const DASH = '—';

/** A number for a table cell: about three significant digits, with its unit. */
export function formatValue(x: number, unit: Unit): string {
  if (!Number.isFinite(x)) return DASH;
  const a = Math.abs(x);
  let s: string;
  if (a === 0) s = '0';
  else if (a >= 1000) s = Math.round(x).toLocaleString('en-US');
  else if (a >= 100) s = x.toFixed(0);
  else if (a >= 10) s = x.toFixed(1);
  else if (a >= 1) s = x.toFixed(2);
  else if (a >= 0.01) s = x.toFixed(3);
  else s = x.toExponential(1);
  switch (unit) {
    case 'ms':
      return `${s} ms`;
    case '%':
      return `${s} %`;
    case '/s':
      return `${s} /s`;
    case 'RTT':
      return `${s} RTT`;
    case 'messages':
      return `${s} msgs`;
  }
}

/** Table cells are one line; a pipe would end the cell. */
export function escapeCell(s: string): string {
  return s.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

/** The ratio cell: seed / ours p50 (ours / seed for rates), "x" suffixed. */
export function ratioCell(r: Row): string {
  if (r.ours === null) return DASH;
  const q = r.higherIsBetter ? ratio(r.ours.p50, r.seed) : ratio(r.seed, r.ours.p50);
  return q === undefined ? DASH : `${q}x`;
}

export function rowCells(r: Row): string[] {
  const tag = r.status === 'measured' || r.status === 'not measured yet' ? '' : ` *(${r.status})*`;
  const seed =
    r.seed === null ? (r.seedNote ?? DASH) : formatValue(r.seed, r.unit) + (r.seedNote ? ` (${r.seedNote})` : '');
  const p50 = r.ours === null ? 'not measured yet' : formatValue(r.ours.p50, r.unit);
  const p99 = r.ours === null ? DASH : r.ours.n > 1 ? formatValue(r.ours.p99, r.unit) : DASH;
  return [escapeCell(r.measurement) + tag, escapeCell(seed), p50, p99, ratioCell(r)];
}

export function renderTable(rows: readonly Row[]): string {
  const head = ['measurement', "seed's value", 'ours p50', 'ours p99', 'ratio (seed / ours)'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows) lines.push(`| ${rowCells(r).join(' | ')} |`);
  return lines.join('\n');
}

export function renderFigure(f: Figure): string {
  const parts = [`### ${escapeCell(f.title)}`, '', `Reproduces: ${f.source}.`];
  if (f.plot) parts.push(`Plot: [${f.plot}](${f.plot}).`);
  parts.push('', renderTable(f.rows));
  const notes = [...f.notes, ...f.rows.filter((r) => r.note).map((r) => `${r.measurement}: ${r.note}`)];
  if (notes.length > 0) parts.push('', ...notes.map((n) => `- ${n}`));
  return parts.join('\n');
}

export function renderHeader(res: BenchResult): string {
  const m = res.machine;
  const load = m.loadEnd === undefined ? `${m.loadStart}` : `${m.loadStart} at start, ${m.loadEnd} at end`;
  return [
    `Machine: ${m.cores} cores (${m.cpu}), Node ${m.node}, ${m.os}, ${m.memoryGiB} GiB; load average ${load}.`,
    `Run: \`${res.command}\` on ${res.date}${res.quick ? ' (quick: fewer iterations and sizes)' : ''}.`,
    ...res.notes,
  ].join('\n');
}

export function renderReport(res: BenchResult): string {
  const parts = ['# Benchmarks: secp2psip against the seeds', '', renderHeader(res), ''];
  parts.push(
    "Ratio: the seed's value divided by our p50 (for rates, ours divided by the seed's); above 1 means faster than the seed.",
    'Seed values are the averages printed in seed 000 section VI and the goals of seed 003 chapter 5; ours are percentiles.',
    '',
  );
  for (const f of res.figures) parts.push(renderFigure(f), '');
  return `${parts.join('\n').trimEnd()}\n`;
}
