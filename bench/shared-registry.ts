/**
 * New-name registrations per second (a phone's first REGISTER: the adapter makes the user's key, the
 * bootstrap checks it, binds the name, splits the key and puts n pieces and the location into the ring)
 * with the registry where it can live:
 *
 * - one bootstrap on its SQLite file (the default);
 * - three bootstraps, each on its own SQLite file (names forwarded to their rendezvous owner);
 * - three bootstraps sharing one PostgreSQL database (any bootstrap binds any name).
 *
 * Same three adapters (one phone port each per worker) in every case, all daemons in this one process on
 * loopback TLS, PostgreSQL a private cluster with its default durability (fsync and synchronous commit on,
 * as SQLite's synchronous=FULL). Needs root and /usr/lib/postgresql/15/bin for the PostgreSQL row.
 *
 *   node --import tsx bench/shared-registry.ts [--quick]
 *
 * Writes bench/results/shared-registry.json and prints a table.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
const NAMES = quick ? 150 : 600;
/** Phones registering at once, spread over the three adapters. */
const CONCURRENCY = 24;
const K = 3;
const N = 5;

type Setup = '1 bootstrap, SQLite' | '3 bootstraps, own SQLite each' | '3 bootstraps, one PostgreSQL';

interface Row {
  setup: Setup;
  registrationsPerS: number;
  msP50: number;
  msP99: number;
  names: number;
  failed: number;
}

async function run(setup: Setup, base: string, registry?: string): Promise<Row> {
  const m = setup.startsWith('1') ? 1 : 3;
  const infos: BootstrapInfo[] = [];
  for (let i = 0; i < m; i++) {
    const dir = join(base, `${setup.length}-boot-${i}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    infos.push({ addr: `127.0.0.1:${await freePort()}`, key: Identity.loadOrCreate(join(dir, 'node')).bundle.sig });
  }
  const boots: RunningBootstrap[] = await Promise.all(
    infos.map((info, i) =>
      startBootstrapDaemon({
        host: '127.0.0.1',
        port: Number(info.addr.split(':')[1]),
        dataDir: join(base, `${setup.length}-boot-${i}`),
        k: K,
        n: N,
        peers: infos,
        registry,
      }),
    ),
  );
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
  const probes = await Promise.all(Array.from({ length: CONCURRENCY }, () => SipProbe.open()));
  const ms: number[] = [];
  let failed = 0;
  const prefix = `u${setup.length}x`;
  const t0 = performance.now();
  await Promise.all(
    probes.map(async (p, w) => {
      const a = adapters[w % 3];
      const [host, port] = [a.sipAddr.split(':')[0], Number(a.sipAddr.split(':')[1])];
      for (let i = w; i < NAMES; i += CONCURRENCY) {
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
  for (const a of adapters) await a.close();
  for (const b of boots) await b.close();
  return {
    setup,
    registrationsPerS: Math.round(ms.length / s),
    msP50: Number(percentile(ms, 50).toFixed(1)),
    msP99: Number(percentile(ms, 99).toFixed(1)),
    names: ms.length,
    failed,
  };
}

async function main(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'secp2psip-bench-registry-'));
  const rows: Row[] = [];
  let pg: TestPostgres | undefined;
  try {
    rows.push(await run('1 bootstrap, SQLite', base));
    rows.push(await run('3 bootstraps, own SQLite each', base));
    const missing = postgresMissing();
    if (missing) process.stderr.write(`PostgreSQL row skipped: ${missing}\n`);
    else {
      pg = await TestPostgres.start({ durable: true });
      rows.push(await run('3 bootstraps, one PostgreSQL', base, pg.createDatabase('bench')));
    }
  } finally {
    pg?.destroy();
    rmSync(base, { recursive: true, force: true });
  }
  const result = { quick, names: NAMES, concurrency: CONCURRENCY, k: K, n: N, adapters: 3, rows };
  mkdirSync(join('bench', 'results'), { recursive: true });
  writeFileSync(join('bench', 'results', 'shared-registry.json'), `${JSON.stringify(result, null, 1)}\n`);
  process.stdout.write(
    '| registry | new names/s | p50 | p99 | bound | failed |\n| --- | --- | --- | --- | --- | --- |\n',
  );
  for (const r of rows)
    process.stdout.write(
      `| ${r.setup} | ${r.registrationsPerS} | ${r.msP50} ms | ${r.msP99} ms | ${r.names} | ${r.failed} |\n`,
    );
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  },
);
