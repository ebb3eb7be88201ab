/**
 * New-name registrations per second (a phone's first REGISTER: the adapter makes the user's key, the
 * bootstrap checks it, binds the name, splits the key and puts n pieces and the location into the ring)
 * with the registry where it can live:
 *
 * - one bootstrap on its SQLite file (the default);
 * - three bootstraps, each on its own SQLite file (names forwarded to their rendezvous owner);
 * - three bootstraps sharing one PostgreSQL database (any bootstrap binds any name).
 *
 * Same three adapters in every case, phones registering one at a time, then C at once; all daemons in
 * this one process on loopback TLS (so three bootstraps share one core's event loop), PostgreSQL a private
 * cluster with its default durability (fsync and synchronous commit on, as SQLite's synchronous=FULL).
 * Besides the phones' view, the time spent in the registry itself: the claim's transaction and the
 * marking as published. Needs root and /usr/lib/postgresql/15/bin for the PostgreSQL rows.
 *
 *   node --import tsx bench/shared-registry.ts [--quick] [--concurrency C]
 *
 * Writes bench/results/shared-registry.json and prints a table.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Identity } from '../src/identity/identity.ts';
import {
  type RunningAdapter,
  type RunningBootstrap,
  startAdapterDaemon,
  startBootstrapDaemon,
} from '../src/secp2psip/daemon.ts';
import type { BootstrapInfo } from '../src/secp2psip/messages.ts';
import { percentile } from '../src/util/stats.ts';
import { freePort } from '../test/sip/e2e-helpers.ts';
import { postgresMissing, TestPostgres } from '../test/support/postgres.ts';
import { SipProbe } from './lib/sip-probe.ts';

const quick = process.argv.includes('--quick');
const NAMES = quick ? 120 : 480;
/** Phones registering at once, spread over the three adapters: one at a time, then this many. */
const CONCURRENCY = Number(process.argv[process.argv.indexOf('--concurrency') + 1]) || (quick ? 6 : 12);
const K = 3;
const N = 5;

type Setup = '1 bootstrap, SQLite' | '3 bootstraps, own SQLite each' | '3 bootstraps, one PostgreSQL';

interface Row {
  setup: Setup;
  concurrency: number;
  registrationsPerS: number;
  msP50: number;
  msP99: number;
  /** Time in the registry per registration: the claim's transaction, and marking it published (p50, ms). */
  claimMsP50: number;
  markMsP50: number;
  names: number;
  failed: number;
}

/** Time every call of `obj[method]` into `out` (ms); a method that answers at once (SQLite) stays synchronous. */
function timed(obj: object, method: string, out: number[]): void {
  const o = obj as Record<string, (...a: unknown[]) => unknown>;
  const orig = o[method].bind(obj);
  o[method] = (...a: unknown[]) => {
    const t = performance.now();
    const r = orig(...a);
    if (!(r instanceof Promise)) {
      out.push(performance.now() - t);
      return r;
    }
    return r.finally(() => out.push(performance.now() - t));
  };
}

const p50 = (xs: number[]) => Number(percentile(xs, 50).toFixed(2));

async function run(setup: Setup, base: string, registry?: string): Promise<Row[]> {
  const m = setup.startsWith('1') ? 1 : 3;
  const dirOf = (i: number) => join(base, `${setup.length}-boot-${i}`);
  const infos: BootstrapInfo[] = [];
  for (let i = 0; i < m; i++) {
    mkdirSync(dirOf(i), { recursive: true, mode: 0o700 });
    infos.push({
      addr: `127.0.0.1:${await freePort()}`,
      key: Identity.loadOrCreate(join(dirOf(i), 'node')).bundle.sig,
    });
  }
  const boots: RunningBootstrap[] = await Promise.all(
    infos.map((info, i) =>
      startBootstrapDaemon({
        host: '127.0.0.1',
        port: Number(info.addr.split(':')[1]),
        dataDir: dirOf(i),
        k: K,
        n: N,
        peers: infos,
        registry,
      }),
    ),
  );
  const claims: number[] = [];
  const marks: number[] = [];
  for (const b of boots) {
    timed(b.server.names, 'claim', claims);
    timed(b.server.names, 'markPublished', marks);
  }
  const adapters: RunningAdapter[] = [];
  for (let i = 0; i < 3; i++)
    adapters.push(
      await startAdapterDaemon({
        openRegistration: true,
        sipHost: '127.0.0.1',
        sipPort: 0,
        bootstrap: infos[i % m],
        timeoutMs: 10_000,
      }),
    );
  // Let the ring settle before timing.
  await new Promise((r) => setTimeout(r, 4000));
  const rows: Row[] = [];
  for (const concurrency of [1, CONCURRENCY]) {
    claims.length = 0;
    marks.length = 0;
    const probes = await Promise.all(Array.from({ length: concurrency }, () => SipProbe.open()));
    const ms: number[] = [];
    let failed = 0;
    const prefix = `u${setup.length}c${concurrency}x`;
    const t0 = performance.now();
    await Promise.all(
      probes.map(async (p, w) => {
        const a = adapters[w % 3];
        const [host, port] = [a.sipAddr.split(':')[0], Number(a.sipAddr.split(':')[1])];
        for (let i = w; i < NAMES; i += concurrency) {
          // A 503 asks the phone to come back (Retry-After): it does, as a phone would, and the time counts.
          for (let attempt = 0; ; attempt++) {
            const ans = await p.register({ host, port }, `${prefix}${i}`);
            if (ans.status === 200) {
              ms.push(ans.ms);
              break;
            }
            if (ans.status !== 503 || attempt >= 10) {
              failed++;
              break;
            }
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      }),
    );
    const s = (performance.now() - t0) / 1000;
    await Promise.all(probes.map((p) => p.close()));
    rows.push({
      setup,
      concurrency,
      registrationsPerS: Math.round(ms.length / s),
      msP50: Number(percentile(ms, 50).toFixed(1)),
      msP99: Number(percentile(ms, 99).toFixed(1)),
      claimMsP50: p50(claims),
      markMsP50: p50(marks),
      names: ms.length,
      failed,
    });
  }
  for (const a of adapters) await a.close();
  for (const b of boots) await b.close();
  return rows;
}

async function main(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'secp2psip-bench-registry-'));
  const rows: Row[] = [];
  let pg: TestPostgres | undefined;
  try {
    rows.push(...(await run('1 bootstrap, SQLite', base)));
    rows.push(...(await run('3 bootstraps, own SQLite each', base)));
    const missing = postgresMissing();
    if (missing) process.stderr.write(`PostgreSQL row skipped: ${missing}\n`);
    else {
      pg = await TestPostgres.start({ durable: true });
      rows.push(...(await run('3 bootstraps, one PostgreSQL', base, pg.createDatabase('bench'))));
    }
  } finally {
    pg?.destroy();
    rmSync(base, { recursive: true, force: true });
  }
  const result = { quick, names: NAMES, concurrency: CONCURRENCY, k: K, n: N, adapters: 3, loadavg: loadavg(), rows };
  mkdirSync(join('bench', 'results'), { recursive: true });
  writeFileSync(join('bench', 'results', 'shared-registry.json'), `${JSON.stringify(result, null, 1)}\n`);
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  process.stdout.write(`load average at the end: ${load}\n`);
  process.stdout.write(
    '| registry | phones at once | new names/s | p50 | p99 | claim p50 | mark p50 | bound | failed |\n' +
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n',
  );
  for (const r of rows)
    process.stdout.write(
      `| ${r.setup} | ${r.concurrency} | ${r.registrationsPerS} | ${r.msP50} ms | ${r.msP99} ms | ` +
        `${r.claimMsP50} ms | ${r.markMsP50} ms | ${r.names} | ${r.failed} |\n`,
    );
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  },
);
