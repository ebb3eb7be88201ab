/**
 * First registrations alone: the overlay of bench/secp2psip.ts (50 adapters,
 * one bootstrap, k=6 n=10, TLS ring on loopback), then one phone per adapter
 * registers for the first time, one after another, REGISTER to 200 OK; with
 * the RPCs every node sent per registration (everything the registration
 * started, the work after the 200 included, less the ring's maintenance
 * measured while idle just before), and the TLS connections they dialled.
 *
 * Run: node --import tsx bench/secp2psip-registration.ts [--adapters 50] [--idle-ms 2000] [--cpu-prof FILE]
 *      [--sync-delay-ms N] [--tree DIR]
 * (`--cpu-prof`: a V8 CPU profile of the registrations alone, for Chrome DevTools. `--sync-delay-ms`: each
 * fdatasync of the bootstrap's registry takes N ms longer, as on a disk whose flush is slower than this
 * host's; default 0, the disk as it is. `--tree`: the overlay of another checkout of this repository, so
 * that two versions run under one benchmark, alternately, for ratios.)
 * Prints one JSON line (p50, p99, mean in ms; RPCs per registration; load).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { LocalOverlay as Overlay } from '../src/harness/local-overlay.ts';
import type { decodeMessage as decode } from '../src/secp2psip/messages.ts';
import { mean, percentile } from '../src/util/stats.ts';

const argv = process.argv.slice(2);
const num = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const adapters = num('adapters', 50);
const idleMs = num('idle-ms', 2000);
const syncDelayMs = num('sync-delay-ms', 0);
const tree = argv.includes('--tree') ? resolve(argv[argv.indexOf('--tree') + 1]) : join(import.meta.dirname, '..');
const { LocalOverlay } = (await import(pathToFileURL(join(tree, 'src/harness/local-overlay.ts')).href)) as {
  LocalOverlay: typeof Overlay;
};
const { decodeMessage } = (await import(pathToFileURL(join(tree, 'src/secp2psip/messages.ts')).href)) as {
  decodeMessage: typeof decode;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'secp2psip-reg-bench-'));
const overlay = await LocalOverlay.start({ adapters, dataDir: join(dir, 'overlay'), k: 6, n: 10 });
// The bootstrap's part of each registration: REGISTER RPC in, REGISTERED out (checks, claim, sync, put).
const atBootstrap: number[] = [];
{
  const server = overlay.boot.server;
  const handle = server.handle.bind(server);
  server.handle = async (payload, caller) => {
    const t = performance.now();
    const out = await handle(payload, caller);
    const m = decodeMessage(payload);
    if (m.ok && m.value.t === 'REGISTER') atBootstrap.push(performance.now() - t);
    return out;
  };
}
if (syncDelayMs > 0) {
  const registry = overlay.boot.server.registry;
  const sync = registry.sync.bind(registry);
  registry.sync = async () => {
    await sync();
    await sleep(syncDelayMs);
  };
}
try {
  const sent = () =>
    overlay.boot.server.endpoint.stats.requestsSent +
    overlay.adapters.reduce((n, a) => n + a.node.endpoint.stats.requestsSent, 0);
  await sleep(idleMs);
  const i0 = sent();
  const t0 = performance.now();
  await sleep(idleMs);
  const idlePerMs = (sent() - i0) / (performance.now() - t0);
  const dials = () =>
    [overlay.boot.server.endpoint, ...overlay.adapters.map((a) => a.node.endpoint)].reduce(
      (n, e) => n + ((e.stats as { connectionsDialed?: number }).connectionsDialed ?? 0),
      0,
    );
  const d0 = dials();
  const r0 = sent();
  const t1 = performance.now();
  const profOut = argv.includes('--cpu-prof') ? argv[argv.indexOf('--cpu-prof') + 1] : undefined;
  const session = profOut ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  atBootstrap.length = 0;
  const reg = await overlay.registerPhones();
  const bootMs = [...atBootstrap];
  if (session && profOut) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(profOut, JSON.stringify(profile));
    session.disconnect();
  }
  // What the last registrations started after their 200 (mailbox, republish) finishes.
  await sleep(idleMs);
  const rpcs = sent() - r0 - idlePerMs * (performance.now() - t1);
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  console.log(
    JSON.stringify({
      adapters,
      tree,
      syncDelayMs,
      registered: reg.ms.length,
      failed: reg.failed,
      p50: r3(percentile(reg.ms, 50)),
      p99: r3(percentile(reg.ms, 99)),
      mean: r3(mean(reg.ms)),
      /** The REGISTERs at the bootstrap alone (ms). */
      bootstrapP50: r3(percentile(bootMs, 50)),
      rpcsPerRegistration: r3(rpcs / Math.max(1, reg.ms.length)),
      dialsPerRegistration: r3((dials() - d0) / Math.max(1, reg.ms.length)),
      idleRpcsPerSecond: r3(idlePerMs * 1000),
      loadavg1: r3(loadavg()[0]),
      cpu: cpus()[0]?.model.trim(),
    }),
  );
} finally {
  await overlay.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
