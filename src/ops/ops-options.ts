/**
 * The operator options every daemon shares (`--metrics`, `--http`, and a
 * bootstrap's `--admin-token-file`), parsed once, and the listeners they
 * open. Both listen on loopback unless an address is given: `--metrics 9464`
 * means 127.0.0.1:9464; a wildcard is used only when asked for by name.
 * The same address for both opens one listener serving everything.
 */
import { readFileSync } from 'node:fs';
import { type HostPort, type OptionSpec, type ParsedArgs, parseHostPort } from '../util/args.ts';
import { OverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { OpsServer } from './http-server.ts';
import type { PromMetrics } from './prom-metrics.ts';
import { roleGauges } from './probes.ts';
import type { OpsTarget } from './targets.ts';

export const OPS_SPEC = {
  metrics: {
    type: 'string',
    help: 'serve Prometheus metrics, /healthz and /readyz on host:port (a bare port: 127.0.0.1)',
  },
  http: {
    type: 'string',
    help: 'serve the live dashboard, its JSON state (secp2psip status), metrics and health on host:port (a bare port: 127.0.0.1)',
  },
} as const satisfies Record<string, OptionSpec>;

export const ADMIN_SPEC = {
  'admin-token-file': {
    type: 'string',
    help: 'file holding the bearer token of the --http administration API (list users, release a name)',
  },
} as const satisfies Record<string, OptionSpec>;

export interface OpsConfig {
  metrics?: HostPort;
  http?: HostPort;
  adminToken?: string;
}

/** `port` alone or `host:port`; the default host is loopback. */
export function parseListenOption(value: string, what: string): HostPort {
  if (/^\d+$/.test(value)) {
    const port = Number(value);
    if (port > 65535) throw new OverlayError('BAD_ARGUMENT', `${what} port must be at most 65535, got ${port}`);
    return { host: '127.0.0.1', port };
  }
  return parseHostPort(value, what);
}

/** A token file: its first line, at least 16 characters of visible ASCII. */
export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new OverlayError('BAD_ARGUMENT', `--admin-token-file: ${(e as Error).message}`);
  }
  const token = text.split(/\r?\n/)[0].trim();
  if (!/^[\x21-\x7e]{16,}$/.test(token))
    throw new OverlayError(
      'BAD_ARGUMENT',
      `--admin-token-file: the first line of ${path} must be a token of at least 16 visible ASCII characters`,
    );
  return token;
}

export function parseOpsOptions(args: ParsedArgs): OpsConfig {
  const out: OpsConfig = {};
  if (typeof args.metrics === 'string') out.metrics = parseListenOption(args.metrics, '--metrics');
  if (typeof args.http === 'string') out.http = parseListenOption(args.http, '--http');
  if (typeof args['admin-token-file'] === 'string') {
    out.adminToken = readTokenFile(args['admin-token-file']);
    if (!out.http) throw new OverlayError('BAD_ARGUMENT', '--admin-token-file needs --http (the API it protects)');
  }
  return out;
}

export interface RunningOps {
  /** The metrics port to give the daemon (undefined when nothing is served). */
  metrics?: PromMetrics;
  servers: OpsServer[];
  /** `metrics <url>` / `http <url>` lines for stdout. */
  lines: string[];
  /** The daemon is up: serve its state, and read its state metrics from `running`. */
  attach(target: OpsTarget, running: unknown): void;
  close(): Promise<void>;
}

function same(a: HostPort | undefined, b: HostPort | undefined): boolean {
  return a !== undefined && b !== undefined && a.host === b.host && a.port === b.port && a.port !== 0;
}

/** Open the listeners asked for; a port in use is a one-line configuration error. */
export async function startOps(cfg: OpsConfig, role: string, logger?: Logger): Promise<RunningOps> {
  const wanted = cfg.metrics !== undefined || cfg.http !== undefined;
  // prom-client and the HTTP server are loaded only when asked for: a daemon without them starts as fast as before.
  const { PromMetrics } = wanted ? await import('./prom-metrics.ts') : { PromMetrics: undefined };
  const { OpsServer } = wanted ? await import('./http-server.ts') : { OpsServer: undefined };
  const metrics = PromMetrics ? new PromMetrics({ role }) : undefined;
  let running: unknown;
  if (metrics) roleGauges(metrics, role, () => running);
  const servers: OpsServer[] = [];
  const lines: string[] = [];
  const open = async (hp: HostPort, dashboard: boolean, what: string) => {
    try {
      if (!OpsServer) throw new Error('no listener asked for');
      const s = await OpsServer.listen({ ...hp, role, metrics, dashboard, adminToken: cfg.adminToken, logger });
      servers.push(s);
      return s;
    } catch (e) {
      for (const s of servers) await s.close();
      throw new OverlayError(
        'BAD_CONFIG',
        `cannot listen for ${what} on ${hp.host}:${hp.port}: ${(e as Error).message}`,
      );
    }
  };
  if (cfg.http) {
    const s = await open(cfg.http, true, '--http');
    lines.push(`http ${s.url}`);
  }
  if (cfg.metrics && !same(cfg.metrics, cfg.http)) {
    const s = await open(cfg.metrics, false, '--metrics');
    lines.push(`metrics ${s.url}metrics`);
  } else if (cfg.metrics) lines.push(`metrics ${servers[0].url}metrics`);
  return {
    metrics,
    servers,
    lines,
    attach(target, daemon) {
      running = daemon;
      for (const s of servers) s.attach(target);
    },
    async close() {
      for (const s of servers) await s.close();
    },
  };
}
