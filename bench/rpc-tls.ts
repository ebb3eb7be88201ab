/**
 * TLS RPC benchmark: two nodes on loopback, by default in two processes (the
 * callee is this program re-run with `serve`), so each side has its own core.
 *
 *   node --import tsx bench/rpc-tls.ts [--seconds 3] [--inflight 64] [--same-process]
 *
 * Measures: single request round trip (sequential), pipelined throughput with
 * a fixed number in flight over one TLS link, and the cost of a fresh
 * connection (TCP + TLS 1.3 mutual handshake + first request). Prints a table
 * and writes bench/results/rpc-tls.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TlsRpcEndpoint } from '../src/rpc/tls-endpoint.ts';
import type { NodeRef } from '../src/rpc/types.ts';
import { floatOption, intOption, parseArgs } from '../src/util/args.ts';
import { mean, percentile } from '../src/util/stats.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** The callee echoes, and reports its CPU time on 'cpu' so CPU per request can be measured on a busy machine. */
function echoOrCpu(method: string, payload: unknown): unknown {
  if (method === 'cpu') {
    const u = process.cpuUsage();
    return u.user + u.system;
  }
  return payload;
}

async function serve(): Promise<void> {
  const ep = await TlsRpcEndpoint.listen({
    keyPair: generateKeyPairSync('ed25519'),
    limits: { maxServingPerConnection: 4096 },
  });
  ep.onRequest(echoOrCpu);
  process.stdout.write(
    `${JSON.stringify({ id: ep.self.id, addr: ep.self.addr, key: Buffer.from(ep.self.key).toString('hex') })}\n`,
  );
  process.stdin.resume();
  process.stdin.on('end', () => void ep.close().then(() => process.exit(0)));
}

async function startCallee(sameProcess: boolean): Promise<{ ref: NodeRef; stop: () => Promise<void> }> {
  if (sameProcess) {
    const ep = await TlsRpcEndpoint.listen({
      keyPair: generateKeyPairSync('ed25519'),
      limits: { maxServingPerConnection: 4096 },
    });
    ep.onRequest(echoOrCpu);
    return { ref: ep.self, stop: () => ep.close() };
  }
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(here, 'rpc-tls.ts'), 'serve'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      rl.close();
      resolve(l);
    });
    child.once('exit', (c) => reject(new Error(`callee exited with ${c}`)));
  });
  const info = JSON.parse(line) as { id: string; addr: string; key: string };
  return {
    ref: { id: info.id, addr: info.addr, key: new Uint8Array(Buffer.from(info.key, 'hex')) },
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.stdin!.end();
      }),
  };
}

async function roundTrips(ep: TlsRpcEndpoint, to: NodeRef, n: number, payload: unknown): Promise<number[]> {
  const us: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await ep.request(to, 'echo', payload);
    us.push((performance.now() - t0) * 1000);
  }
  return us;
}

async function pipelined(ep: TlsRpcEndpoint, to: NodeRef, seconds: number, inflight: number, payload: unknown) {
  let done = 0;
  const calleeCpu0 = (await ep.request(to, 'cpu', null)) as number;
  const cpu0 = process.cpuUsage();
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  const worker = async () => {
    while (performance.now() < deadline) {
      await ep.request(to, 'echo', payload);
      done++;
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const calleeCpu = ((await ep.request(to, 'cpu', null)) as number) - calleeCpu0;
  return {
    requests: done,
    seconds: elapsed,
    perSecond: done / elapsed,
    /** CPU microseconds per request pair on each side: less sensitive than wall time to other load. */
    callerCpuUs: (cpu.user + cpu.system) / done,
    calleeCpuUs: calleeCpu / done,
  };
}

/** Fresh links from new endpoints: wall time each, and CPU per link on each side (callee read over `main`). */
async function freshConnections(main: TlsRpcEndpoint, to: NodeRef, n: number) {
  const ms: number[] = [];
  let callerCpuUs = 0;
  const callee0 = (await main.request(to, 'cpu', null)) as number;
  for (let i = 0; i < n; i++) {
    const ep = await TlsRpcEndpoint.listen({ keyPair: generateKeyPairSync('ed25519') });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await ep.request(to, 'echo', 1);
    ms.push(performance.now() - t0);
    const cpu = process.cpuUsage(cpu0);
    callerCpuUs += cpu.user + cpu.system;
    await ep.close();
  }
  const calleeCpuUs = ((await main.request(to, 'cpu', null)) as number) - callee0;
  return { ms, callerCpuMs: callerCpuUs / n / 1000, calleeCpuMs: calleeCpuUs / n / 1000 };
}

async function main(): Promise<void> {
  if (process.argv[2] === 'serve') return serve();
  const args = parseArgs(process.argv.slice(2), {
    seconds: { type: 'string', default: '3' },
    inflight: { type: 'string', default: '64' },
    'same-process': { type: 'boolean', default: false },
  });
  const seconds = floatOption(args, 'seconds', 0.1, 600);
  const inflight = intOption(args, 'inflight', 1, 4096);
  const sameProcess = args['same-process'] as boolean;
  const load1 = loadavg()[0];
  const callee = await startCallee(sameProcess);
  const caller = await TlsRpcEndpoint.listen({
    keyPair: generateKeyPairSync('ed25519'),
    limits: { maxInFlightPerPeer: 4096 },
  });
  const small = { k: 'abcdef0123456789', n: 42 };
  const kib = { blob: new Uint8Array(1024) };
  await roundTrips(caller, callee.ref, 2000, small); // warm-up (handshake, JIT)
  const rtt = await roundTrips(caller, callee.ref, 5000, small);
  const rttKib = await roundTrips(caller, callee.ref, 2000, kib);
  await pipelined(caller, callee.ref, 0.5, inflight, small); // warm-up
  const tput = await pipelined(caller, callee.ref, seconds, inflight, small);
  const tputKib = await pipelined(caller, callee.ref, seconds, inflight, kib);
  const tput1 = await pipelined(caller, callee.ref, Math.min(seconds, 1), 1, small);
  const fresh = await freshConnections(caller, callee.ref, 30);
  const conn = fresh.ms;
  await caller.close();
  await callee.stop();

  const result = {
    bench: 'rpc-tls',
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadavg1: load1,
    mode: sameProcess ? 'same-process' : 'two-processes',
    inflight,
    rttUs: { p50: percentile(rtt, 50), p90: percentile(rtt, 90), p99: percentile(rtt, 99), mean: mean(rtt) },
    rttKibUs: { p50: percentile(rttKib, 50), p99: percentile(rttKib, 99) },
    throughput: { small: tput, kib: tputKib, oneInFlight: tput1 },
    freshConnectionMs: { p50: percentile(conn, 50), p90: percentile(conn, 90), mean: mean(conn) },
    /** CPU of one new link (TCP + TLS 1.3 mutual handshake + hello + first request) on each side. */
    freshConnectionCpuMs: { caller: fresh.callerCpuMs, callee: fresh.calleeCpuMs },
  };
  const rows: [string, string][] = [
    ['mode', `${result.mode}, node ${result.node}, ${result.cpus} cpus, load average ${f(load1, 1)} at start`],
    [
      'round trip p50 / p90 / p99 (small)',
      `${f(result.rttUs.p50)} / ${f(result.rttUs.p90)} / ${f(result.rttUs.p99)} us`,
    ],
    ['round trip p50 / p99 (1 KiB)', `${f(result.rttKibUs.p50)} / ${f(result.rttKibUs.p99)} us`],
    [
      `throughput, ${inflight} in flight (small)`,
      `${f(tput.perSecond)} req/s (${tput.requests} in ${f(tput.seconds, 2)} s)`,
    ],
    [`CPU per request, caller / callee (small)`, `${f(tput.callerCpuUs, 1)} / ${f(tput.calleeCpuUs, 1)} us`],
    [`throughput, ${inflight} in flight (1 KiB)`, `${f(tputKib.perSecond)} req/s`],
    [`CPU per request, caller / callee (1 KiB)`, `${f(tputKib.callerCpuUs, 1)} / ${f(tputKib.calleeCpuUs, 1)} us`],
    ['throughput, 1 in flight', `${f(tput1.perSecond)} req/s`],
    [
      'fresh connection + first request p50 / p90',
      `${f(result.freshConnectionMs.p50, 2)} / ${f(result.freshConnectionMs.p90, 2)} ms`,
    ],
    ['fresh connection CPU, caller / callee', `${f(fresh.callerCpuMs, 2)} / ${f(fresh.calleeCpuMs, 2)} ms`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
  const dir = join(here, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'rpc-tls.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`wrote ${join('bench', 'results', 'rpc-tls.json')}\n`);
}

function f(x: number, digits = 0): string {
  return x.toFixed(digits);
}

await main();
