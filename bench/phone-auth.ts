/**
 * What phone authentication costs (issue 16): REGISTER/s and call setup (INVITE to 302) p50 at adapters with
 * open registration and with digest authentication, in the same run on the same overlay. Digest is measured
 * two ways: a phone that waits for the challenge each time (two round trips, the worst case) and one that
 * reuses the last challenge with a growing nonce-count (one round trip, what most phones do on refresh).
 *
 *   node --import tsx bench/phone-auth.ts [--quick]
 *
 * Writes bench/results/phone-auth.json and prints a table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PhoneCredentials } from '../src/sip/phone-credentials.ts';
import { percentile } from '../src/util/stats.ts';
import { LoopbackOverlay, sipDest } from './lib/loopback-overlay.ts';
import { type DigestCache, type Dest, SipProbe } from './lib/sip-probe.ts';

const quick = process.argv.includes('--quick');
const CONCURRENCY = 32;
/** Each user refreshes from one phone socket (one binding), as a real phone does. */
const USERS = quick ? CONCURRENCY : 2 * CONCURRENCY;
const REGISTERS = quick ? 500 : 4000;
const CALLS = quick ? 30 : 200;
const ROUNDS = 2;
const PASSWORD = 'bench-password-1';

type Mode = 'open' | 'digest, challenged each time' | 'digest, challenge reused';
const MODES: Mode[] = ['open', 'digest, challenged each time', 'digest, challenge reused'];

const names = (prefix: string) => Array.from({ length: USERS }, (_, i) => `${prefix}${i}`);
const callers = { open: names('oc'), digest: names('dc') };
const callees = { open: names('oe'), digest: names('de') };

async function main(): Promise<void> {
  const overlay = await LoopbackOverlay.start({ k: 3, n: 5 });
  const users = Object.fromEntries([...callers.digest, ...callees.digest].map((u) => [u, PASSWORD]));
  const phoneUsers = PhoneCredentials.inMemory(users);
  const open = [await overlay.addAdapter(), await overlay.addAdapter()].map(sipDest);
  const digest = [await overlay.addAdapter({ phoneUsers }), await overlay.addAdapter({ phoneUsers })].map(sipDest);
  await overlay.settle();
  const probes = await Promise.all(Array.from({ length: CONCURRENCY }, () => SipProbe.open()));
  const caches = new Map<string, DigestCache>();
  const reg = (p: SipProbe, mode: Mode, dest: Dest, user: string) => {
    if (mode === 'open') return p.register(dest, user);
    const callId = `${user}-${p.port}@bench`;
    const cache = mode === 'digest, challenge reused' ? cacheOf(caches, `${p.port}/${user}`) : undefined;
    const uri = `sip:${dest.host}:${dest.port}`;
    return p.withDigest((extra) => p.register(dest, user, { extra, callId }), {
      user,
      password: PASSWORD,
      method: 'REGISTER',
      uri,
      cache,
    });
  };
  // Every user registered once: the bootstrap registration (key split into pieces) is not what is timed here.
  for (const [set, dests] of [
    ['open', open],
    ['digest', digest],
  ] as const) {
    const mode: Mode = set === 'open' ? 'open' : 'digest, challenged each time';
    for (const u of callers[set]) check(await reg(probes[0], mode, dests[0], u), `register ${u}`);
    for (const u of callees[set]) check(await reg(probes[0], mode, dests[1], u), `register ${u}`);
  }
  await overlay.settle(2);

  const rates: Record<Mode, number[]> = {
    open: [],
    'digest, challenged each time': [],
    'digest, challenge reused': [],
  };
  const setups: Record<Mode, number[]> = {
    open: [],
    'digest, challenged each time': [],
    'digest, challenge reused': [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of MODES) {
      const set = mode === 'open' ? 'open' : 'digest';
      const dest = (set === 'open' ? open : digest)[0];
      const t0 = performance.now();
      await Promise.all(
        probes.map(async (p, w) => {
          for (let i = w; i < REGISTERS; i += CONCURRENCY)
            check(await reg(p, mode, dest, callers[set][i % USERS]), 'refresh');
        }),
      );
      rates[mode].push(REGISTERS / ((performance.now() - t0) / 1000));
    }
    for (let i = 0; i < CALLS; i++) {
      for (const mode of MODES) {
        const set = mode === 'open' ? 'open' : 'digest';
        const dest = (set === 'open' ? open : digest)[0];
        const p = probes[i % CONCURRENCY];
        const from = callers[set][i % USERS];
        const to = callees[set][i % USERS];
        const uri = `sip:${to}@${dest.host}:${dest.port}`;
        const cache = mode === 'digest, challenge reused' ? cacheOf(caches, `call/${p.port}/${from}`) : undefined;
        const ans =
          mode === 'open'
            ? await p.invite(dest, from, to)
            : await p.withDigest((extra) => p.invite(dest, from, to, { extra }), {
                user: from,
                password: PASSWORD,
                method: 'INVITE',
                uri,
                cache,
              });
        if (ans.status !== 302) throw new Error(`${mode}: call ${from} -> ${to} got ${ans.status}`);
        setups[mode].push(ans.ms);
      }
    }
  }
  const rows = MODES.map((mode) => ({
    mode,
    registersPerS: Math.round(rates[mode].reduce((a, b) => a + b, 0) / rates[mode].length),
    callSetupMsP50: Number(percentile(setups[mode], 50).toFixed(2)),
    callSetupMsP99: Number(percentile(setups[mode], 99).toFixed(2)),
    calls: setups[mode].length,
  }));
  const result = { quick, users: USERS, registers: REGISTERS, concurrency: CONCURRENCY, rounds: ROUNDS, rows };
  mkdirSync(join('bench', 'results'), { recursive: true });
  writeFileSync(join('bench', 'results', 'phone-auth.json'), `${JSON.stringify(result, null, 1)}\n`);
  process.stdout.write('| phones | REGISTER/s | call setup p50 | p99 |\n| --- | --- | --- | --- |\n');
  for (const r of rows)
    process.stdout.write(`| ${r.mode} | ${r.registersPerS} | ${r.callSetupMsP50} ms | ${r.callSetupMsP99} ms |\n`);
  await Promise.all(probes.map((p) => p.close()));
  await overlay.close();
}

function cacheOf(m: Map<string, DigestCache>, k: string): DigestCache {
  let c = m.get(k);
  if (!c) m.set(k, (c = { nc: 0, proxy: false }));
  return c;
}

function check(a: { status: number; response: { reason: string } }, what: string): void {
  if (a.status !== 200) throw new Error(`${what}: ${a.status} ${a.response.reason}`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  },
);
