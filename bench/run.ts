/**
 * `npm run bench` [-- --quick] [-- --only fig4,fig5,...]: reproduce the
 * seeds' evaluations and write, under bench/results/:
 *   <YYYY-MM-DD>.json and latest.json  the rows (lib/schema.ts)
 *   latest.md                          the tables, machine noted at the top
 *   fig4.svg fig5.svg fig6.svg throughput.svg whanau.svg wide-area.svg
 * and the "Benchmarks" section of docs/benchmarks.md (between its markers).
 * Progress goes to stderr. With --only, the other figures are kept from the
 * previous latest.json.
 *
 * Figures: fig4 (registration, lookup, call setup vs running adapters),
 * fig5 (piece retrieval + rebuild), fig6 (overhead % of call length, derived
 * from fig4), throughput, whanau (real TLS nodes: 3,000 full, 300 quick), wide-area
 * (emulated latency on the in-memory network).
 */
import 'reflect-metadata';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../src/util/args.ts';
import { isOverlayError } from '../src/util/errors.ts';
import { runFig4 } from './figures/fig4.ts';
import { runFig5 } from './figures/fig5.ts';
import { runFig6 } from './figures/fig6.ts';
import { runThroughput } from './figures/throughput.ts';
import { runWhanau } from './figures/whanau.ts';
import { runWideArea } from './figures/wide-area.ts';
import { type FigureContext, type FigureOutput, stderrContext } from './lib/context.ts';
import { currentLoad, machineInfo } from './lib/machine.ts';
import { renderReadmeSection, renderReport, withReadmeSection } from './lib/markdown.ts';
import { type BenchResult, type Figure, SCHEMA_VERSION, validateResult } from './lib/schema.ts';

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results');
const ALL = ['fig4', 'fig5', 'fig6', 'throughput', 'whanau', 'wide-area'] as const;
type FigureId = (typeof ALL)[number];

const USAGE = `usage: npm run bench -- [--quick] [--only ${ALL.join(',')}]`;

function failedFigure(id: string, e: unknown): Figure {
  const msg = (e as Error)?.message ?? String(e);
  return {
    id,
    title: `${id}: failed in this run`,
    source: '-',
    notes: [`The run of this figure failed: ${msg.replace(/\s+/g, ' ').slice(0, 300)}`],
    rows: [],
  };
}

async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { quick: { type: 'boolean' }, only: { type: 'string' }, help: { type: 'boolean' } });
  if (a.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const quick = a.quick === true;
  const only = typeof a.only === 'string' ? a.only.split(',').map((s) => s.trim()) : [...ALL];
  for (const id of only)
    if (!(ALL as readonly string[]).includes(id)) throw new Error(`--only: unknown figure '${id}' (${ALL.join(', ')})`);
  const wanted = (id: FigureId) => only.includes(id);
  const ctx: FigureContext = stderrContext(quick);
  const machine = machineInfo();
  const started = performance.now();
  const outputs = new Map<string, FigureOutput>();

  const step = async (id: FigureId, fn: () => Promise<FigureOutput> | FigureOutput) => {
    if (!wanted(id)) return;
    ctx.say(`== ${id}`);
    const t = performance.now();
    try {
      outputs.set(id, await fn());
    } catch (e) {
      ctx.say(`${id} failed: ${(e as Error)?.stack ?? e}`);
      outputs.set(id, { figure: failedFigure(id, e), charts: [] });
    }
    ctx.say(`== ${id} done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  };

  await step('fig4', () => runFig4(ctx));
  await step('fig5', () => runFig5(ctx));
  await step('fig6', () => {
    const s = outputs.get('fig4')?.samples ?? {};
    const keys = Object.keys(s).filter((k) => k.startsWith('call setup, signed|'));
    const largest = Math.max(...keys.map((k) => Number(k.split('|')[2])));
    const pick = keys.filter((k) => Number(k.split('|')[2]) === largest);
    const samples = pick.flatMap((k) => s[k]);
    return runFig6(samples, `Figure 4 call setup, signed mode, ${largest} adapters, both k/n`);
  });
  await step('throughput', () => runThroughput(ctx));
  await step('whanau', () => runWhanau(ctx));
  await step('wide-area', () => runWideArea(ctx));

  machine.loadEnd = currentLoad();
  const date = new Date().toISOString().slice(0, 10);
  const notes: string[] = [];
  const busiest = Math.max(machine.loadStart, machine.loadEnd);
  if (busiest > machine.cores * 0.5)
    notes.push(
      `**The machine was shared with other work during this run (load average up to ${busiest} on ${machine.cores} cores): loopback timings are noisy and pessimistic.** Emulated and simulated rows do not depend on CPU speed.`,
    );
  notes.push(`Total run time ${((performance.now() - started) / 1000).toFixed(0)} s.`);

  let figures: Figure[] = [...outputs.values()].map((o) => o.figure);
  const latestJson = join(RESULTS, 'latest.json');
  if (only.length < ALL.length && existsSync(latestJson)) {
    try {
      const prev = JSON.parse(readFileSync(latestJson, 'utf8')) as BenchResult;
      const fresh = new Map(figures.map((f) => [f.id, f]));
      const merged = ALL.map((id) => fresh.get(id) ?? prev.figures.find((f) => f.id === id)).filter(
        (f): f is Figure => f !== undefined,
      );
      figures = merged;
      const before = prev.notes.find((n) => n.startsWith('Figures '));
      notes.push(
        `Figures ${only.join(', ')} from this run; the others kept from \`${prev.command}\` of ${prev.date}${before ? ` (${before.replace(/\.$/, '')})` : ''}.`,
      );
    } catch {
      // An unreadable previous result is simply replaced.
    }
  }
  const result: BenchResult = {
    schema: SCHEMA_VERSION,
    date,
    command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`,
    quick,
    machine,
    notes,
    figures,
  };
  const problems = validateResult(result);
  if (problems.length > 0) ctx.say(`result has problems: ${problems.join('; ')}`);

  mkdirSync(RESULTS, { recursive: true });
  for (const o of outputs.values()) for (const c of o.charts) writeFileSync(join(RESULTS, c.file), c.svg);
  const json = `${JSON.stringify(result, null, 2)}\n`;
  writeFileSync(join(RESULTS, `${date}.json`), json);
  writeFileSync(latestJson, json);
  const md = renderReport(result);
  writeFileSync(join(RESULTS, 'latest.md'), md);
  process.stdout.write(md);
  // Only the Benchmarks section of docs/benchmarks.md is rewritten (between its markers); the rest stays as it is.
  const page = join(RESULTS, '..', '..', 'docs', 'benchmarks.md');
  if (existsSync(page)) writeFileSync(page, withReadmeSection(readFileSync(page, 'utf8'), renderReadmeSection(result)));
  ctx.say(
    `wrote ${join('bench', 'results', 'latest.md')}, latest.json, ${date}.json, the SVG plots and the Benchmarks section of docs/benchmarks.md`,
  );
  return problems.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench: ${isOverlayError(e) ? e.message : ((e as Error)?.message ?? e)}\n`);
    process.exit(2);
  },
);
