/**
 * Self-contained SVG plots (no library): a line chart over a numeric x axis
 * or grouped bars over categories, log or linear y. The seed's series are
 * drawn beside ours: dashed lines and hollow markers, hatched-grey bars.
 * Whiskers show p50..p99 where a point carries them.
 */

export interface Point {
  x: number | string;
  y: number;
  /** Whisker top (e.g. p99). */
  hi?: number;
}

export interface Series {
  name: string;
  points: Point[];
  /** The seed's values: drawn dashed / hollow. */
  seed?: boolean;
  /** Draw the line dashed, in the second palette: a second family of series beside the first (markers stay filled). */
  dashed?: boolean;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  kind: 'line' | 'bar';
  yScale: 'log' | 'linear';
  /** Line charts: x positions proportional to value (default), or the distinct x values evenly spaced. */
  xScale?: 'linear' | 'even';
  series: Series[];
  /** Bar charts: the category order (default: order of first appearance). */
  categories?: string[];
  /** Horizontal reference lines (e.g. a goal). */
  refLines?: { y: number; label: string }[];
  width?: number;
  height?: number;
}

const OURS = [
  '#1f77b4',
  '#2ca02c',
  '#9467bd',
  '#17becf',
  '#8c564b',
  '#e377c2',
  '#000000',
  '#637939',
  '#393b79',
  '#7b4173',
];
const SEED = ['#d62728', '#ff7f0e', '#7f7f7f', '#bcbd22'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Short tick labels: 0.01, 0.1, 1, 10, 100, 1k, 10k. */
export function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${sigStr(v / 1e6)}M`;
  if (a >= 1e3) return `${sigStr(v / 1e3)}k`;
  return sigStr(v);
}

function sigStr(v: number): string {
  return String(Number(v.toPrecision(3)));
}

/** Nice linear ticks from 0 to at least max. */
export function linearTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[out.length - 1] < max) out.push(Number((out[out.length - 1] + step).toPrecision(12)));
  return out;
}

/** Powers of ten spanning [min, max] (both > 0). */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  let hi = Math.ceil(Math.log10(max));
  if (hi === lo) hi = lo + 1;
  const out: number[] = [];
  for (let e = lo; e <= hi; e++) out.push(10 ** e);
  return out;
}

interface YAxis {
  ticks: number[];
  map(v: number): number;
}

function yAxis(spec: ChartSpec, top: number, bottom: number): YAxis {
  const vals: number[] = [];
  for (const s of spec.series) for (const p of s.points) vals.push(p.y, p.hi ?? p.y);
  for (const r of spec.refLines ?? []) vals.push(r.y);
  if (spec.yScale === 'log') {
    const pos = vals.filter((v) => v > 0 && Number.isFinite(v));
    const ticks = pos.length === 0 ? [1, 10] : logTicks(Math.min(...pos), Math.max(...pos));
    const l0 = Math.log10(ticks[0]);
    const l1 = Math.log10(ticks[ticks.length - 1]);
    return { ticks, map: (v) => bottom - ((Math.log10(v) - l0) / (l1 - l0)) * (bottom - top) };
  }
  const fin = vals.filter((v) => Number.isFinite(v));
  const ticks = linearTicks(fin.length === 0 ? 1 : Math.max(...fin));
  const m = ticks[ticks.length - 1];
  return { ticks, map: (v) => bottom - (v / m) * (bottom - top) };
}

function plottable(spec: ChartSpec, v: number): boolean {
  return Number.isFinite(v) && (spec.yScale === 'linear' || v > 0);
}

const f1 = (x: number) => x.toFixed(1);

export function renderChart(spec: ChartSpec): string {
  const W = spec.width ?? 760;
  const H = spec.height ?? 440;
  const left = 78;
  const longest = Math.max(0, ...spec.series.map((s) => s.name.length));
  const right = W - Math.max(190, Math.round(longest * 6.6) + 60);
  const top = 48;
  const bottom = H - 62;
  const y = yAxis(spec, top, bottom);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`,
  );
  for (const t of y.ticks) {
    const ty = f1(y.map(t));
    out.push(
      `<line x1="${left}" y1="${ty}" x2="${right}" y2="${ty}" stroke="#e0e0e0"/>`,
      `<text x="${left - 6}" y="${ty}" text-anchor="end" dominant-baseline="middle">${escapeXml(tickLabel(t))}</text>`,
    );
  }
  out.push(
    `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#000"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#000"/>`,
    `<text x="${(left + right) / 2}" y="${H - 18}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`,
    `<text transform="translate(18 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}${spec.yScale === 'log' ? ' (log scale)' : ''}</text>`,
  );
  const colours = assignColours(spec.series);
  if (spec.kind === 'line') out.push(...lines(spec, y, left, right, bottom, colours));
  else out.push(...bars(spec, y, left, right, bottom, colours));
  for (const r of spec.refLines ?? []) {
    if (!plottable(spec, r.y)) continue;
    const ry = f1(y.map(r.y));
    out.push(
      `<line x1="${left}" y1="${ry}" x2="${right}" y2="${ry}" stroke="#d62728" stroke-dasharray="2 3"/>`,
      `<text x="${right - 4}" y="${Number(ry) - 4}" text-anchor="end" fill="#d62728">${escapeXml(r.label)}</text>`,
    );
  }
  spec.series.forEach((s, i) => {
    const ly = top + 6 + i * 18;
    const c = colours[i];
    const dash = s.seed || s.dashed ? ' stroke-dasharray="6 3"' : '';
    out.push(
      `<line x1="${right + 14}" y1="${ly}" x2="${right + 38}" y2="${ly}" stroke="${c}" stroke-width="2"${dash}/>`,
      `<text x="${right + 44}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function assignColours(series: Series[]): string[] {
  let o = 0;
  let s = 0;
  return series.map((x) => (x.seed || x.dashed ? SEED[s++ % SEED.length] : OURS[o++ % OURS.length]));
}

function lines(spec: ChartSpec, y: YAxis, left: number, right: number, bottom: number, colours: string[]): string[] {
  const xs = spec.series.flatMap((s) => s.points.map((p) => Number(p.x))).filter(Number.isFinite);
  const x0 = xs.length ? Math.min(...xs) : 0;
  const x1 = xs.length ? Math.max(...xs) : 1;
  const pad = 20;
  const distinct = [...new Set(xs)].sort((a, b) => a - b);
  const mapX =
    spec.xScale === 'even'
      ? (v: number) =>
          distinct.length < 2
            ? (left + right) / 2
            : left + pad + (distinct.indexOf(v) / (distinct.length - 1)) * (right - left - 2 * pad)
      : (v: number) =>
          x1 === x0 ? (left + right) / 2 : left + pad + ((v - x0) / (x1 - x0)) * (right - left - 2 * pad);
  const out: string[] = [];
  for (const v of distinct)
    out.push(`<text x="${f1(mapX(v))}" y="${bottom + 16}" text-anchor="middle">${escapeXml(tickLabel(v))}</text>`);
  spec.series.forEach((s, i) => {
    const c = colours[i];
    const pts = s.points.filter((p) => Number.isFinite(Number(p.x)) && plottable(spec, p.y));
    pts.sort((a, b) => Number(a.x) - Number(b.x));
    if (pts.length > 1) {
      const d = pts.map((p, j) => `${j === 0 ? 'M' : 'L'}${f1(mapX(Number(p.x)))} ${f1(y.map(p.y))}`).join(' ');
      const dash = s.seed || s.dashed ? ' stroke-dasharray="6 3"' : '';
      out.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${dash}/>`);
    }
    for (const p of pts) {
      const px = f1(mapX(Number(p.x)));
      const py = f1(y.map(p.y));
      if (p.hi !== undefined && plottable(spec, p.hi) && p.hi > p.y)
        out.push(`<line x1="${px}" y1="${py}" x2="${px}" y2="${f1(y.map(p.hi))}" stroke="${c}"/>`);
      const fill = s.seed ? '#ffffff' : c;
      out.push(`<circle cx="${px}" cy="${py}" r="3.5" fill="${fill}" stroke="${c}" stroke-width="1.5"/>`);
    }
  });
  return out;
}

function bars(spec: ChartSpec, y: YAxis, left: number, right: number, bottom: number, colours: string[]): string[] {
  const cats = spec.categories ?? [...new Set(spec.series.flatMap((s) => s.points.map((p) => String(p.x))))];
  const out: string[] = [];
  if (cats.length === 0) return out;
  const slot = (right - left) / cats.length;
  const bw = Math.max(2, (slot * 0.8) / Math.max(1, spec.series.length));
  const base = y.map(y.ticks[0]);
  cats.forEach((cat, ci) => {
    const x0 = left + ci * slot + slot * 0.1;
    out.push(
      `<text x="${f1(left + (ci + 0.5) * slot)}" y="${bottom + 16}" text-anchor="middle">${escapeXml(cat)}</text>`,
    );
    spec.series.forEach((s, si) => {
      const p = s.points.find((q) => String(q.x) === cat);
      if (!p || !plottable(spec, p.y)) return;
      const c = colours[si];
      const bx = x0 + si * bw;
      const by = y.map(p.y);
      const fill = s.seed ? `fill="#ffffff" stroke="${c}" stroke-width="2" stroke-dasharray="4 2"` : `fill="${c}"`;
      out.push(
        `<rect x="${f1(bx)}" y="${f1(by)}" width="${f1(bw - 2)}" height="${f1(Math.max(0, base - by))}" ${fill}/>`,
      );
      if (p.hi !== undefined && plottable(spec, p.hi) && p.hi > p.y) {
        const cx = f1(bx + (bw - 2) / 2);
        out.push(`<line x1="${cx}" y1="${f1(by)}" x2="${cx}" y2="${f1(y.map(p.hi))}" stroke="#000"/>`);
      }
    });
  });
  return out;
}
