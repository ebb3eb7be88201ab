/**
 * What keeping the registrar's bindings in SQLite costs (src/sip/registrar-sqlite.ts,
 * used by the SecP2PSIP adapter so phones stay reachable across a restart):
 * CPU time per REGISTER with and without the store, and the time to reload
 * and restore every binding at start. Prints a table and writes
 * bench/results/registrar-bindings.json.
 *
 * Run: node --import tsx bench/registrar-bindings.ts [--bindings 20000] [--rounds 3]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SipRequest } from '../src/sip/message.ts';
import { Registrar } from '../src/sip/registrar.ts';
import { SqliteBindingStore } from '../src/sip/registrar-sqlite.ts';
import { intOption, parseArgs } from '../src/util/args.ts';
import { SystemClock } from '../src/util/clock.ts';

const args = parseArgs(process.argv.slice(2), {
  bindings: { type: 'string', default: '20000' },
  rounds: { type: 'string', default: '3' },
});
const N = intOption(args, 'bindings', 100, 1_000_000);
const ROUNDS = intOption(args, 'rounds', 1, 20);

function register(i: number): SipRequest {
  const user = `u${i}`;
  return {
    kind: 'request',
    method: 'REGISTER',
    uri: 'sip:example.com',
    version: 'SIP/2.0',
    headers: [
      { name: 'Via', value: `SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-${i}` },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: `<sip:${user}@example.com>;tag=${i}` },
      { name: 'To', value: `<sip:${user}@example.com>` },
      { name: 'Call-ID', value: `reg-${i}@192.0.2.1` },
      { name: 'CSeq', value: '1 REGISTER' },
      { name: 'Contact', value: `<sip:${user}@192.0.2.${1 + (i % 250)}:5060>` },
      { name: 'Expires', value: '600' },
    ],
    body: new Uint8Array(0),
  };
}

const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;

const dir = mkdtempSync(join(tmpdir(), 'registrar-bindings-'));
const rows: Record<string, number[]> = { memoryUs: [], sqliteUs: [], restoreMs: [] };
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const persist of [false, true]) {
      const store = persist ? new SqliteBindingStore(join(dir, `round-${round}.sqlite`)) : undefined;
      const registrar = new Registrar({ clock: new SystemClock(), store });
      const reqs = Array.from({ length: N }, (_, i) => register(i));
      const c0 = process.cpuUsage();
      for (const r of reqs) if (registrar.register(r).status !== 200) throw new Error('REGISTER refused');
      (persist ? rows.sqliteUs : rows.memoryUs).push((cpuMs(process.cpuUsage(c0)) * 1000) / N);
      if (!store) continue;
      store.close();
      const c1 = process.cpuUsage();
      const again = new SqliteBindingStore(join(dir, `round-${round}.sqlite`));
      const report = new Registrar({ clock: new SystemClock(), store: again }).restore(again.load().rows);
      rows.restoreMs.push(cpuMs(process.cpuUsage(c1)));
      again.close();
      if (report.restored !== N) throw new Error(`restored ${report.restored} of ${N}`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const best = (xs: number[]) => Math.min(...xs);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const load = loadavg()[0];
const table = [
  ['REGISTER, bindings in memory (us CPU)', rows.memoryUs],
  ['REGISTER, bindings also in SQLite (us CPU)', rows.sqliteUs],
  [`reload + restore of ${N} bindings (ms CPU)`, rows.restoreMs],
] as const;
console.log(`registrar bindings: ${N} bindings, ${ROUNDS} rounds, load average ${load.toFixed(2)}`);
console.log(`${'measurement'.padEnd(48)} ${'best'.padStart(9)} ${'mean'.padStart(9)}`);
for (const [name, xs] of table)
  console.log(`${name.padEnd(48)} ${best(xs).toFixed(1).padStart(9)} ${mean(xs).toFixed(1).padStart(9)}`);

const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'registrar-bindings.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ bindings: N, rounds: ROUNDS, loadAverage: load, ...rows }, null, 2)}\n`);
console.log(`wrote ${out}`);
