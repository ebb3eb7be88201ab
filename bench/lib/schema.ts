/**
 * The result file of `npm run bench` (bench/results/<date>.json and
 * latest.json). One row per measurement, next to the seed's value where the
 * seed reports one; a measurement that could not be made is a row with
 * `ours: null` and status 'not measured yet', never an invented number.
 */
import type { MachineInfo } from './machine.ts';
import type { Summary } from './summary.ts';

export const SCHEMA_VERSION = 1;

export type Unit = 'ms' | '%' | '/s' | 'RTT' | 'messages';

/**
 * How a row's number came about: measured on real sockets; emulated on the
 * in-memory network with a stated latency; simulated with a stated latency
 * model; derived by arithmetic from other rows; or not measured yet.
 */
export type RowStatus = 'measured' | 'emulated' | 'simulated' | 'derived' | 'not measured yet';

export interface Row {
  measurement: string;
  unit: Unit;
  /** The seed's value in the same unit, when the seed gives one. */
  seed: number | null;
  /** Where the seed's value comes from, or its qualifier ("goal", "most lookups under"). */
  seedNote?: string;
  ours: Summary | null;
  status: RowStatus;
  /** Higher is better (rates): the ratio column is then ours / seed. */
  higherIsBetter?: boolean;
  note?: string;
  params?: Record<string, string | number | boolean>;
}

export interface Figure {
  id: string;
  title: string;
  /** Seed and section reproduced. */
  source: string;
  /** Method, latency model, what N means, etc. */
  notes: string[];
  rows: Row[];
  /** SVG file written for this figure, relative to bench/results/. */
  plot?: string;
  /** Wall time the figure took to produce (ms). */
  elapsedMs?: number;
}

export interface BenchResult {
  schema: number;
  date: string;
  command: string;
  quick: boolean;
  machine: MachineInfo;
  /** Free-form notes for the header (shared machine, noisy numbers). */
  notes: string[];
  figures: Figure[];
}

/** Structural check of a parsed result file; returns the problems found (empty when valid). */
export function validateResult(x: unknown): string[] {
  const errs: string[] = [];
  const o = x as Partial<BenchResult> | null;
  if (typeof o !== 'object' || o === null) return ['not an object'];
  if (o.schema !== SCHEMA_VERSION) errs.push(`schema must be ${SCHEMA_VERSION}`);
  if (typeof o.date !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(o.date)) errs.push('date must be YYYY-MM-DD...');
  if (typeof o.machine?.cores !== 'number' || typeof o.machine?.node !== 'string') errs.push('machine incomplete');
  if (!Array.isArray(o.figures)) return [...errs, 'figures must be an array'];
  o.figures.forEach((f, i) => {
    if (typeof f?.id !== 'string' || typeof f?.title !== 'string') errs.push(`figure ${i}: id and title required`);
    if (!Array.isArray(f?.rows)) {
      errs.push(`figure ${i}: rows must be an array`);
      return;
    }
    f.rows.forEach((r, j) => {
      const at = `figure ${f.id} row ${j}`;
      if (typeof r.measurement !== 'string' || r.measurement === '') errs.push(`${at}: measurement required`);
      if (r.seed !== null && !Number.isFinite(r.seed)) errs.push(`${at}: seed must be a number or null`);
      if (r.status === 'not measured yet' && r.ours !== null) errs.push(`${at}: not measured yet but has a value`);
      if (r.status !== 'not measured yet' && r.ours === null) errs.push(`${at}: no value but status ${r.status}`);
      if (r.ours !== null) {
        const s = r.ours;
        if (!(s.n >= 1)) errs.push(`${at}: n must be >= 1`);
        if (!(s.min <= s.p50 && s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.max))
          errs.push(`${at}: percentiles out of order`);
      }
    });
  });
  return errs;
}

/** A row for something that exists in the seed's evaluation but could not be measured in this run. */
export function notMeasured(measurement: string, unit: Unit, seed: number | null, why: string): Row {
  return { measurement, unit, seed, ours: null, status: 'not measured yet', note: why };
}
