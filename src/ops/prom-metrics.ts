/**
 * The Metrics port (src/util/metrics.ts) served as Prometheus exposition by
 * prom-client. One Registry per daemon, never prom-client's global one, so
 * several daemons in one process (the demo, the tests, the benchmark) keep
 * their series apart. Event metrics come from the catalogue; state metrics
 * are read at scrape time through `gauge` and `counterOf` (see probes.ts).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import {
  COUNTERS,
  type CounterName,
  HISTOGRAMS,
  type HistogramName,
  type MetricLabels,
  type Metrics,
} from '../util/metrics.ts';

type Labels = Record<string, string | number>;
/** A reading of labelled values at scrape time: one entry per series. */
export type Reading = number | Array<[Labels, number]>;

export class PromMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly counters = new Map<string, Counter>();
  private readonly histograms = new Map<string, Histogram>();

  constructor(labels: Labels = {}, opts: { processMetrics?: boolean } = {}) {
    this.registry.setDefaultLabels(labels);
    for (const [name, d] of Object.entries(COUNTERS))
      this.counters.set(
        name,
        new Counter({ name, help: d.help, labelNames: [...d.labels], registers: [this.registry] }),
      );
    for (const [name, d] of Object.entries(HISTOGRAMS))
      this.histograms.set(
        name,
        new Histogram({
          name,
          help: d.help,
          labelNames: [...d.labels],
          buckets: [...d.buckets],
          registers: [this.registry],
        }),
      );
    // Process metrics (CPU, memory, event loop lag, handles) on this daemon's registry.
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  count(name: CounterName, labels: MetricLabels = {}, by = 1): void {
    this.counters.get(name)?.inc(labels as Labels, by);
  }

  observe(name: HistogramName, value: number, labels: MetricLabels = {}): void {
    this.histograms.get(name)?.observe(labels as Labels, value);
  }

  /** A gauge read from the daemon's state at each scrape. */
  gauge(name: string, help: string, read: () => Reading, labelNames: string[] = []): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        const v = read();
        this.reset();
        if (typeof v === 'number') this.set(v);
        else for (const [l, x] of v) this.set(l, x);
      },
    });
  }

  /** A counter whose total the daemon already keeps (its `stats`): exposed as read at each scrape. */
  counterOf(name: string, help: string, read: () => Reading, labelNames: string[] = []): void {
    new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        const v = read();
        this.reset();
        if (typeof v === 'number') this.inc(v);
        else for (const [l, x] of v) this.inc(l, x);
      },
    });
  }

  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
