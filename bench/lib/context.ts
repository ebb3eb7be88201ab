/** What every figure module receives from the orchestrator, and what it hands back. */
import { ProgressBar } from '../../src/util/progress.ts';
import type { Figure } from './schema.ts';

export interface FigureContext {
  quick: boolean;
  /** One line of status on stderr. */
  say(msg: string): void;
  /** A progress bar on stderr for a step of `total` units. */
  bar(label: string, total: number): { update(done: number): void; done(): void };
}

export interface Chart {
  /** File name under bench/results/. */
  file: string;
  svg: string;
}

export interface FigureOutput {
  figure: Figure;
  charts: Chart[];
  /** Raw samples other figures derive from (e.g. call setup times for Figure 6). */
  samples?: Record<string, number[]>;
}

export function stderrContext(quick: boolean): FigureContext {
  return {
    quick,
    say: (msg) => process.stderr.write(`${msg}\n`),
    bar: (label, total) => new ProgressBar(label, total, { force: true }),
  };
}

/** Time one async operation in ms. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}
