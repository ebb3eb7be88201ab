/**
 * One worker process of bench/whanau-tls.ts: hosts a slice of the nodes (each
 * a WhanauDaemon with its own key and TLS listener) and runs what the
 * coordinator asks over the IPC channel.
 */
import { WhanauDaemon } from '../src/whanausip/whanau-daemon.ts';
import type { WhanauParams } from '../src/dht/whanau/params.ts';

export interface RefJson {
  id: string;
  addr: string;
  key: string;
}

export interface WorkerRequest {
  id: number;
  op: 'start' | 'peers' | 'setup' | 'offline' | 'lookup' | 'stop';
  count?: number;
  params?: WhanauParams;
  maxOutgoing?: number;
  idleMs?: number;
  peers?: RefJson[][];
  epoch?: number;
  indices?: number[];
  jobs?: { from: number; key: string }[];
  /** Lookups in flight at once in this worker. */
  width?: number;
}

export interface LookupResult {
  found: boolean;
  ms: number;
  messages: number;
}

export interface WorkerReply {
  id: number;
  refs?: RefJson[];
  setupMs?: number[];
  dialed?: number;
  results?: LookupResult[];
  /** Peak resident set size of the worker so far (sampled every second). */
  rss?: number;
  /** CPU seconds the worker spent in SETUP. */
  cpuS?: number;
  /** Table entries each node holds after SETUP (db + fingers + successor records). */
  tables?: number[];
  error?: string;
}

const LIMITS = {
  idleTimeoutMs: 5_000,
  connectTimeoutMs: 30_000,
  handshakeTimeoutMs: 30_000,
  requestTimeoutMs: 60_000,
  maxConnections: 8192,
};

/**
 * Per-step timings of one node's lookup (WHANAU_TRACE=1): each walk taken
 * from the cache and each call sent, as `kind:ms`, to show where a slow
 * lookup waits.
 */
function traceSteps(d: WhanauDaemon): { list: string[]; stop(): void } {
  const list: string[] = [];
  const node = d.node;
  const take = node.walks.take;
  const call = node.call;
  node.walks.take = async (count, length) => {
    const t = performance.now();
    const out = await take.call(node.walks, count, length);
    list.push(`walk:${(performance.now() - t).toFixed(0)}${out.length ? '' : '(none)'}`);
    return out;
  };
  node.call = async (to, method, payload, waits) => {
    const t = performance.now();
    let how = '';
    try {
      return await call.call(node, to, method, payload, waits);
    } catch (e) {
      how = `!${(e as { code?: string }).code ?? 'err'}`;
      throw e;
    } finally {
      list.push(`${method.slice(7)}:${(performance.now() - t).toFixed(0)}${how}`);
    }
  };
  return {
    list,
    stop() {
      node.walks.take = take;
      node.call = call;
    },
  };
}

/** Run `jobs` with at most `width` at once. */
async function pool<T>(jobs: (() => Promise<T>)[], width: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, jobs.length) }, async () => {
      while (next < jobs.length) {
        const k = next++;
        out[k] = await jobs[k]();
      }
    }),
  );
  return out;
}

export function runWorker(): void {
  let daemons: WhanauDaemon[] = [];
  const down = new Set<number>();
  const reply = (r: WorkerReply) => process.send?.(r);
  let peakRss = 0;
  setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 1000).unref();
  process.on('message', async (m: WorkerRequest) => {
    switch (m.op) {
      case 'start': {
        const params = m.params as WhanauParams;
        daemons = await pool(
          Array.from(
            { length: m.count ?? 0 },
            () => () =>
              WhanauDaemon.start({
                host: '127.0.0.1',
                port: 0,
                params,
                schedule: false,
                limits: { ...LIMITS, idleTimeoutMs: m.idleMs ?? LIMITS.idleTimeoutMs },
                maxOutgoing: m.maxOutgoing,
              }),
          ),
          32,
        );
        const refs = daemons.map((d) => ({
          id: d.hash,
          addr: d.self.addr,
          key: Buffer.from(d.self.key).toString('hex'),
        }));
        return reply({ id: m.id, refs });
      }
      case 'peers': {
        // Keys come with the graph, as a restored peer book would give them: no probe handshake per link.
        await Promise.all(
          (m.peers ?? []).flatMap((list, i) =>
            list.map((p) =>
              daemons[i].addPeer({ hash: p.id, addr: p.addr }, new Uint8Array(Buffer.from(p.key, 'hex'))),
            ),
          ),
        );
        return reply({ id: m.id });
      }
      case 'setup': {
        const cpu0 = process.cpuUsage();
        let done = 0;
        // A line on stderr every 30 s: how far this worker's SETUP has come.
        const progress = setInterval(() => {
          const c = process.cpuUsage(cpu0);
          const sent = daemons.reduce((s, d) => s + d.endpoint.stats.requestsSent, 0);
          const timeouts = daemons.reduce((s, d) => s + d.endpoint.stats.timeouts, 0);
          const links = daemons.reduce((s, d) => s + d.endpoint.connectionCount, 0);
          process.stderr.write(
            `  worker ${process.pid}: ${done}/${daemons.length} SETUPs done, ${sent} requests, ${timeouts} timeouts, ${links} links open, ${((c.user + c.system) / 1e6).toFixed(0)} CPU-s\n`,
          );
        }, 30_000);
        const setupMs = await Promise.all(
          daemons.map(async (d) => {
            const t = performance.now();
            await d.setup(m.epoch);
            done++;
            return performance.now() - t;
          }),
        );
        clearInterval(progress);
        const cpu = process.cpuUsage(cpu0);
        const dialed = daemons.reduce((s, d) => s + d.endpoint.stats.connectionsDialed, 0);
        const tables = daemons.map((d) => {
          const run = d.node.published;
          if (!run) return 0;
          const fingers = run.fingers.reduce((s, f) => s + (f?.ids.length ?? 0), 0);
          return (run.db?.length ?? 0) + fingers + run.succ.reduce((s, x) => s + (x?.size ?? 0), 0);
        });
        return reply({ id: m.id, setupMs, dialed, cpuS: (cpu.user + cpu.system) / 1e6, tables });
      }
      case 'offline': {
        const go = (m.indices ?? []).filter((i) => !down.has(i));
        for (const i of go) down.add(i);
        await Promise.all(go.map((i) => daemons[i].close()));
        return reply({ id: m.id });
      }
      case 'lookup': {
        const trace = process.env.WHANAU_TRACE === '1';
        const traced = new Set<WhanauDaemon>();
        const walks0 = daemons.reduce((s, d) => s + d.node.walks.walksRequested, 0);
        const results = await pool(
          (m.jobs ?? []).map((j) => async () => {
            const d = daemons[j.from];
            const steps = trace && !traced.has(d) ? traceSteps(d) : undefined;
            if (steps) traced.add(d);
            const t = performance.now();
            const r = await d.lookupRecord(j.key);
            const ms = performance.now() - t;
            steps?.stop();
            if (steps) traced.delete(d);
            if (steps && ms > 2000)
              process.stderr.write(`  slow lookup ${ms.toFixed(0)} ms, tries ${r.tries}: ${steps.list.join(' ')}\n`);
            return { found: r.record !== null, ms, messages: r.messages };
          }),
          m.width ?? 4,
        );
        if (trace) {
          const walks = daemons.reduce((s, d) => s + d.node.walks.walksRequested, 0) - walks0;
          process.stderr.write(`  worker ${process.pid}: ${walks} walks requested by walk caches during lookups\n`);
        }
        return reply({ id: m.id, results });
      }
      case 'stop': {
        const rss = Math.max(peakRss, process.memoryUsage.rss());
        const dialed = daemons.reduce((s, d) => s + d.endpoint.stats.connectionsDialed, 0);
        await Promise.all(daemons.map((d) => d.close()));
        reply({ id: m.id, rss, dialed });
        process.disconnect?.();
        return;
      }
    }
  });
}
