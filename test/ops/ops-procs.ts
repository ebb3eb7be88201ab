/**
 * Helpers of the operator-surface tests: a daemon's `http`/`metrics` URLs as
 * printed on stdout, HTTP requests to them, and metric values read from a
 * Prometheus exposition.
 */
import { createServer } from 'node:net';
import { eventually, type Proc, spawnDaemon } from '../secp2psip/procs.ts';

/** The URL a daemon printed on a line `<what> <url>`, once it has. */
export async function printedUrl(stdout: () => string, what: 'http' | 'metrics', ms = 30_000): Promise<string> {
  const re = new RegExp(`^${what} (http://\\S+)$`, 'm');
  await eventually(`the ${what} line`, () => re.test(stdout()), ms, stdout);
  return (re.exec(stdout()) as RegExpExecArray)[1];
}

// biome-ignore lint/suspicious/noExplicitAny: the daemon's JSON answers, checked field by field by the tests
export async function getJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) };
}

export async function scrape(metricsUrl: string): Promise<string> {
  const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`${metricsUrl}: ${res.status}`);
  return res.text();
}

/** The value of one series (`name{a="b",...}`, labels in any order, extra labels allowed); undefined when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total = (total ?? 0) + Number(m[4]);
  }
  return total;
}

/** A TCP port free right now on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A daemon process of the operator tests (started by `spawnDaemon`). */
export type Daemon = Proc;
export { spawnDaemon };
