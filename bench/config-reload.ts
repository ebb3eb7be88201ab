/**
 * What the config file costs: reading and validating each example file (the
 * schema built from the command's options), and on a real `secp2psip node`
 * process, the time from SIGHUP to "configuration reloaded" while a phone keeps
 * refreshing its registration (every refresh must still get its 200).
 *
 *   node --import tsx bench/config-reload.ts [--quick]
 *
 * Writes bench/results/config-reload.json and prints a table.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROLES, specOfRole } from '../src/cli/commands/config.ts';
import { parseArgs } from '../src/util/args.ts';
import { percentile } from '../src/util/stats.ts';
import { SipClient } from '../test/support/sip-client.ts';

const quick = process.argv.includes('--quick');
const PARSES = quick ? 200 : 2000;
const RELOADS = quick ? 10 : 50;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function parseCost(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const role of ROLES) {
    const spec = await specOfRole(role);
    const file = join(ROOT, 'examples', `${role}.toml`);
    for (let i = 0; i < 50; i++) parseArgs(['--config', file], spec);
    const t0 = performance.now();
    for (let i = 0; i < PARSES; i++) parseArgs(['--config', file], spec);
    out[role] = ((performance.now() - t0) * 1000) / PARSES;
  }
  return out;
}

async function reloadCost(): Promise<{ ms: number[]; refreshes: number; refreshFailures: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'secp2psip-bench-reload-'));
  const config = join(dir, 'node.toml');
  const write = (level: string) =>
    writeFileSync(
      config,
      `role = "node"\nsip = "127.0.0.1:0"\ndht = "127.0.0.1:0"\ndata = "${join(dir, 'data')}"\n` +
        `setup-period = 3600\nlog-level = "${level}"\n[phone-users]\nphone = "phone-password"\n`,
    );
  write('info');
  const proc = spawn(process.execPath, [join(ROOT, 'bin/secp2psip.mjs'), 'node', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production', SECP2PSIP_LOG: '' },
  });
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const uri = await new Promise<RegExpExecArray>((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^sip sip:([0-9a-f]{40})@127\.0\.0\.1:(\d+)$/m.exec(out);
      if (m) resolve(m);
    });
    proc.on('exit', (code) => reject(new Error(`node exited ${code}: ${err}`)));
  });
  const [, hash, port] = uri;
  const phone = await SipClient.open(Number(port));
  const aor = `sip:${hash}@127.0.0.1:${port}`;
  const contact = `<sip:${hash}@127.0.0.1:${phone.port}>`;
  let refreshes = 0;
  let refreshFailures = 0;
  let running = true;
  const refresher = (async () => {
    while (running) {
      const r = await phone.withDigest(
        { method: 'REGISTER', uri: `sip:127.0.0.1:${port}`, from: aor, to: aor, contact, expires: 600 },
        'phone',
        'phone-password',
      );
      refreshes++;
      if (r.final.status !== 200) refreshFailures++;
    }
  })();
  const ms: number[] = [];
  for (let i = 0; i < RELOADS; i++) {
    const seen = err.split('configuration reloaded').length;
    write(i % 2 === 0 ? 'debug' : 'info');
    const t0 = performance.now();
    proc.kill('SIGHUP');
    while (err.split('configuration reloaded').length === seen) await new Promise((r) => setImmediate(r));
    ms.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 50));
  }
  running = false;
  await refresher;
  phone.close();
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
  return { ms, refreshes, refreshFailures };
}

async function main(): Promise<void> {
  const parse = await parseCost();
  const reload = await reloadCost();
  const result = {
    date: new Date().toISOString(),
    quick,
    parseUsPerFile: parse,
    reloads: reload.ms.length,
    reloadMsP50: percentile(reload.ms, 50),
    reloadMsP99: percentile(reload.ms, 99),
    refreshesDuringReloads: reload.refreshes,
    refreshFailures: reload.refreshFailures,
  };
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/config-reload.json'), `${JSON.stringify(result, null, 2)}\n`);
  const rows = Object.entries(parse).map(
    ([role, us]) => `| read + validate examples/${role}.toml | ${us.toFixed(0)} us |`,
  );
  process.stdout.write(
    [
      '| measurement | value |',
      '| --- | --- |',
      ...rows,
      `| SIGHUP to "configuration reloaded", p50 / p99 (${result.reloads} reloads) | ${result.reloadMsP50.toFixed(1)} / ${result.reloadMsP99.toFixed(1)} ms |`,
      `| phone REGISTER refreshes during the reloads, failed | ${result.refreshesDuringReloads}, ${result.refreshFailures} |`,
      '',
    ].join('\n'),
  );
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
