/**
 * The metrics port: what the layers count and time, without knowing how it
 * is exposed. Cores stay I/O-free and never import a metrics library; the
 * daemon passes a `Metrics` in (src/ops/prom-metrics.ts serves it as
 * Prometheus exposition) and everything else gets `noMetrics`.
 *
 * The catalogue below is the one list of event metrics (counters and
 * histograms pushed by the layers). Gauges that describe state (ring members,
 * records held, users) are read from the layers' public state at scrape time
 * by the ops layer, so the layers do no work for them between scrapes.
 */

export type MetricLabels = Readonly<Record<string, string | number>>;

interface MetricDef {
  help: string;
  labels: readonly string[];
}

interface HistogramDef extends MetricDef {
  buckets: readonly number[];
}

/** Seconds: call setups and RPCs on loopback take about a millisecond, across a WAN a few hundred. */
const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const COUNTERS = {
  sip_requests_total: {
    help: 'SIP requests sent or received, by direction and method',
    labels: ['direction', 'method'],
  },
  sip_responses_total: {
    help: 'SIP responses sent or received, by direction, method (CSeq) and status',
    labels: ['direction', 'method', 'status'],
  },
  secp2psip_bad_key_pieces_total: {
    help: 'key pieces that disagreed with the rebuilt key (corrected), by the ring node that holds them',
    labels: ['holder'],
  },
} as const satisfies Record<string, MetricDef>;

export const HISTOGRAMS = {
  secp2psip_call_setup_seconds: {
    help: 'phone INVITE to final answer at the caller adapter, by security mode and outcome',
    labels: ['mode', 'outcome'],
    buckets: SECONDS,
  },
  chord_lookup_hops: {
    help: 'hops of a Chord lookup',
    labels: [],
    buckets: [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32],
  },
  chord_rpc_seconds: {
    help: 'round trip of a ring RPC, by method and result',
    labels: ['method', 'result'],
    buckets: SECONDS,
  },
  whanau_setup_seconds: {
    help: 'duration of a Whanau SETUP',
    labels: ['result'],
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  },
  whanau_lookup_messages: {
    help: 'messages sent by one Whanau lookup',
    labels: ['result'],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
  },
} as const satisfies Record<string, HistogramDef>;

export type CounterName = keyof typeof COUNTERS;
export type HistogramName = keyof typeof HISTOGRAMS;

export interface Metrics {
  count(name: CounterName, labels?: MetricLabels, by?: number): void;
  observe(name: HistogramName, value: number, labels?: MetricLabels): void;
}

/** The default: nothing is kept. */
export const noMetrics: Metrics = {
  count() {},
  observe() {},
};
