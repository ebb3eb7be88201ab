/**
 * Call set-up across hosts (network namespaces, test/support/testnet.ts; needs root and iptables): a bootstrap and
 * two adapters on three public hosts bound to 0.0.0.0, scripted phones (src/sip/user-agent.ts) on a public host and
 * behind two NAT routers. Three cases, each with its own caller and callee:
 *
 *   direct          both phones public: the seed's flow, a 302 straight to the callee's phone
 *   nat-to-public   the caller behind a NAT: its adapter's 302 names the adapter, which proxies the INVITE
 *   both-nat        both phones behind NATs: both adapters proxy (record-routed), the callee's over its flow
 *   adapter-nat     the callee's adapter and phone behind a NAT without port forward (a ring client, docs/design.md
 *                   "Adapters behind NAT"), the caller's public: the SIP between the adapters goes over the link the
 *                   client keeps to the caller's adapter (one of its relays)
 *   relayed         both adapters behind two NATs, the caller's NAT "symmetric" (a random port per connection,
 *                   iptables MASQUERADE --random-fully) so no direct connection opens: the SIP and SECP2PSIP between
 *                   the adapters cross a relay circuit (the bootstrap, the first relay both name)
 *   punched         both adapters behind two NATs that keep ports and drop unsolicited connections (as home routers
 *                   do): a direct connection by TCP simultaneous open, coordinated through the bootstrap
 *
 * What a relay costs is read at the bootstrap: the bytes it relayed (its relay_bytes_total metric) and the CPU time
 * of its process (/proc) during the relayed case, against the same readings during adapter-nat, where it relays
 * nothing, side by side in one run.
 *
 * Per case, N times: "302" is the seed's measure (INVITE sent to its 302 received, seed 000 section VI); "set-up"
 * is a full call set-up (INVITE to 200 OK, the 302 followed through the proxies), then BYE. The relay cost is the
 * set-up p50 of a case minus that of `direct`. Adapters run with the default 30 s reuse of verified users, so
 * most calls skip the ring lookups (as repeated calls do).
 *
 *   node --import tsx bench/cross-host-calls.ts [--calls N] [--out FILE]
 *
 * Writes JSON (default bench/results/cross-host-calls.json) and prints a table. A benchmark, not a test.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { percentile } from '../src/util/stats.ts';
import { NetnsLayout } from '../test/support/netns-layout.ts';
import { type Host, iptablesUnavailable, type Testnet } from '../test/support/testnet.ts';

function fail(msg: string): never {
  process.stderr.write(`cross-host-calls: ${msg}\n`);
  process.exit(2);
}

function options(argv: string[]): { calls: number; out: string } {
  const o = { calls: 40, out: join('bench', 'results', 'cross-host-calls.json') };
  for (let i = 0; i < argv.length; i += 2) {
    const v = argv[i + 1];
    if (argv[i] === '--calls') {
      o.calls = Number(v);
      if (!Number.isInteger(o.calls) || o.calls < 1) fail(`--calls must be a positive integer, got '${v}'`);
    } else if (argv[i] === '--out') {
      if (!v) fail('--out needs a file');
      o.out = v;
    } else fail(`unknown option '${argv[i]}' (usage: bench/cross-host-calls.ts [--calls N] [--out FILE])`);
  }
  return o;
}

interface Agent {
  ask(cmd: Record<string, string>): Promise<Record<string, unknown>>;
}

function agent(net: Testnet, host: Host): Promise<Agent> {
  const proc: ChildProcess = net.spawn(
    host,
    [process.execPath, '--import', 'tsx', 'bench/lib/netns-phone-agent.ts', host.addr],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let seq = 0;
  const waiting = new Map<number, (v: { ok: boolean; result?: Record<string, unknown>; error?: string }) => void>();
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`agent on ${host.name} exited with ${code}`)));
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const m = JSON.parse(line);
      if (m.ready) {
        resolve({
          ask(cmd) {
            const id = ++seq;
            return new Promise((res, rej) => {
              waiting.set(id, (a) => (a.ok ? res(a.result ?? {}) : rej(new Error(a.error))));
              proc.stdin?.write(`${JSON.stringify({ ...cmd, id })}\n`);
            });
          },
        });
        return;
      }
      waiting.get(m.id)?.(m);
      waiting.delete(m.id);
    });
  });
}

const CASES = ['direct', 'nat-to-public', 'both-nat', 'adapter-nat', 'relayed', 'punched'] as const;

/** CPU time (ms) the process has used, from /proc (utime + stime, in clock ticks of 10 ms). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** A counter's value (summed over its labels) from a Prometheus text page. */
function metric(page: string, name: string): number {
  let sum = 0;
  for (const line of page.split('\n'))
    if (line.startsWith(name) && /^[a-z_]+(\{[^}]*\})? /.test(line)) sum += Number(line.split(' ').at(-1));
  return sum;
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const why = iptablesUnavailable();
  if (why) fail(`cannot build the test network: ${why}`);
  // Adapters C, D and E behind NATs without port forwards, each with its phone on its LAN. Their routers drop
  // unsolicited connections and keep ports (C's and E's: TCP simultaneous open works between them), but D's picks a
  // random port for every connection, so no direct connection to D opens.
  const lay = await NetnsLayout.build({
    prefix: 'sp2tbench',
    tmp: 'secp2psip-xhost-',
    hosts: ['boot', 'A', 'B', 'pub'],
    nats: [
      { router: 'r1', behind: ['lan1'] },
      { router: 'r2', behind: ['lan2'] },
      { router: 'r3', behind: ['C', 'lan3'], dropUnsolicited: true },
      { router: 'r4', behind: ['D', 'lan4'], dropUnsolicited: true, randomFully: true },
      { router: 'r5', behind: ['E', 'lan5'], dropUnsolicited: true },
    ],
    daemons: {
      boot: { kind: 'bootstrap', on: 'boot', args: ['--log-level', 'warn', '--metrics', '9464'] },
      ...Object.fromEntries(
        ['A', 'B', 'C', 'D', 'E'].map((n) => [n, { kind: 'adapter', on: n, args: ['--log-level', 'warn'] } as const]),
      ),
    },
  });
  const net = lay.net;
  try {
    const [hostA, hostB, hostC, hostD, hostE] = ['A', 'B', 'C', 'D', 'E'].map((n) => lay.host(n));
    await lay.start();
    const bootProc = lay.daemon('boot').proc;
    const relayReading = async () => {
      const page = (await net.exec(lay.host('boot'), ['curl', '-s', 'http://127.0.0.1:9464/metrics'])).stdout;
      return {
        bytes: metric(page, 'relay_bytes_total'),
        messages: metric(page, 'relay_messages_total'),
        cpu: cpuMs(bootProc.pid),
      };
    };
    const A = `${hostA.addr}:5060`;
    const B = `${hostB.addr}:5060`;
    const C = `${hostC.addr}:5060`;
    const D = `${hostD.addr}:5060`;
    const E = `${hostE.addr}:5060`;
    const agents = {
      pub: await agent(net, lay.host('pub')),
      lan1: await agent(net, lay.host('lan1')),
      lan2: await agent(net, lay.host('lan2')),
      lan3: await agent(net, lay.host('lan3')),
      lan4: await agent(net, lay.host('lan4')),
      lan5: await agent(net, lay.host('lan5')),
    };
    // caller's phone, its adapter, callee's phone, its adapter
    const where = {
      direct: [agents.pub, A, agents.pub, B],
      'nat-to-public': [agents.lan1, A, agents.pub, B],
      'both-nat': [agents.lan1, A, agents.lan2, B],
      'adapter-nat': [agents.pub, A, agents.lan3, C],
      relayed: [agents.lan4, D, agents.lan3, C],
      punched: [agents.lan5, E, agents.lan3, C],
    } as const;
    const results: Record<string, { p302: number[]; setup: number[]; failed: number }> = {};
    const relayCost: Record<string, { bytes: number; messages: number; cpuMs: number }> = {};
    for (const c of CASES) {
      const [callerAgent, callerAt, calleeAgent, calleeAt] = where[c];
      const caller = `${c.replace(/-/g, '')}caller`;
      const callee = `${c.replace(/-/g, '')}callee`;
      for (const [ag, user, at] of [
        [calleeAgent, callee, calleeAt],
        [callerAgent, caller, callerAt],
      ] as const) {
        const r = await ag.ask({ op: 'register', user, adapter: at });
        if (r.status !== 200) fail(`${user} could not register: ${r.status}`);
      }
      const res = { p302: [] as number[], setup: [] as number[], failed: 0 };
      const before = await relayReading();
      for (let i = 0; i < o.calls; i++) {
        const p = await callerAgent.ask({ op: 'probe', from: caller, to: callee, adapter: callerAt });
        if (p.status === 302) res.p302.push(p.ms as number);
        else res.failed++;
        try {
          const call = await callerAgent.ask({ op: 'call', from: caller, to: callee, adapter: callerAt });
          res.setup.push(call.ms as number);
          if (call.bye !== 200) res.failed++;
        } catch (e) {
          if (res.failed++ === 0) process.stderr.write(`${c}: first failure: ${(e as Error).message}\n`);
        }
      }
      const after = await relayReading();
      relayCost[c] = {
        bytes: after.bytes - before.bytes,
        messages: after.messages - before.messages,
        cpuMs: after.cpu - before.cpu,
      };
      results[c] = res;
      process.stderr.write(`${c}: ${res.setup.length} calls set up, ${res.failed} failed\n`);
    }
    const row = (xs: number[]) => ({
      n: xs.length,
      p50: xs.length ? Math.round(percentile(xs, 50) * 100) / 100 : null,
      p99: xs.length ? Math.round(percentile(xs, 99) * 100) / 100 : null,
    });
    const direct = row(results.direct.setup).p50 ?? 0;
    const out = {
      date: new Date().toISOString(),
      calls: o.calls,
      hosts: 'network namespaces on one machine (veth + bridge, NAT routers by iptables MASQUERADE)',
      cases: Object.fromEntries(
        CASES.map((c) => {
          const setup = row(results[c].setup);
          return [
            c,
            {
              ms302: row(results[c].p302),
              setupMs: setup,
              relayCostMsP50: setup.p50 === null ? null : Math.round((setup.p50 - direct) * 100) / 100,
              failed: results[c].failed,
              // At the bootstrap (a relay of C and D), per call (a probe and a full call with BYE).
              atRelayPerCall: {
                bytes: Math.round(relayCost[c].bytes / o.calls),
                messages: Math.round((relayCost[c].messages / o.calls) * 10) / 10,
                cpuMs: Math.round((relayCost[c].cpuMs / o.calls) * 100) / 100,
              },
            },
          ];
        }),
      ),
    };
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, `${JSON.stringify(out, null, 1)}\n`);
    const lines = [
      '| case | INVITE to 302 p50 / p99 (ms) | call set-up p50 / p99 (ms) | cost vs direct p50 (ms) | at the relay per call: bytes / messages / CPU ms | failed |',
      '| --- | --- | --- | --- | --- | --- |',
      ...CASES.map((c) => {
        const x = out.cases[c];
        const r = x.atRelayPerCall;
        return `| ${c} | ${x.ms302.p50} / ${x.ms302.p99} | ${x.setupMs.p50} / ${x.setupMs.p99} | ${x.relayCostMsP50} | ${r.bytes} / ${r.messages} / ${r.cpuMs} | ${x.failed} |`;
      }),
    ];
    process.stdout.write(`${lines.join('\n')}\n\nJSON: ${o.out}\n`);
  } finally {
    await lay.destroy();
  }
}

main().catch((e) => fail((e as Error).stack ?? String(e)));
