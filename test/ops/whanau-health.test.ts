import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import puppeteer from 'puppeteer-core';
import { eventually } from '../secp2psip/procs.ts';
import { runCli } from '../support/cli.ts';
import { type Daemon, getJson, metricValue, printedUrl, scrape, spawnDaemon } from './ops-procs.ts';

/**
 * WhanauSIP readiness and metrics on real processes: a gateway whose first
 * SETUP is an hour away is alive but not ready; a node with a short setup
 * period becomes ready after its first SETUP, which its metrics time.
 */
const CHROMIUM = '/usr/bin/chromium';

describe('WhanauSIP node and gateway: health and metrics', { timeout: 120_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'secp2psip-ops-whanau-'));
  const daemons: Daemon[] = [];
  after(async () => {
    for (const d of daemons) await d.stop();
    rmSync(base, { recursive: true, force: true });
  });

  const start = (role: string, period: number, extra: string[]) => {
    const d = spawnDaemon([
      role,
      '--sip',
      '127.0.0.1:0',
      '--dht',
      '127.0.0.1:0',
      '--data',
      join(base, role),
      '--setup-period',
      String(period),
      '--expected-nodes',
      '3',
      '--log-level',
      'warn',
      ...extra,
    ]);
    daemons.push(d);
    return d;
  };

  it('a gateway before its first SETUP: alive, not ready, and why', async () => {
    const gw = start('gateway', 3600, ['--http', '127.0.0.1:0']);
    const url = await printedUrl(gw.stdout, 'http');
    await eventually('gateway up', () => /^hash [0-9a-f]{40}$/m.test(gw.stdout()), 60_000, gw.stderr);
    assert.equal((await getJson(`${url}healthz`)).status, 200);
    const r = await getJson(`${url}readyz`);
    assert.equal(r.status, 503);
    assert.match(r.body.reason, /first SETUP not done/);
  });

  it('a node is ready after its first SETUP, timed in its metrics', async () => {
    const node = start('node', 2, ['--http', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--open-registration']);
    const url = await printedUrl(node.stdout, 'http');
    const metrics = await printedUrl(node.stdout, 'metrics');
    let last: Awaited<ReturnType<typeof getJson>> | undefined;
    await eventually(
      'node ready',
      () => {
        getJson(`${url}readyz`).then(
          (x) => (last = x),
          () => {},
        );
        return last?.status === 200;
      },
      60_000,
      node.stderr,
    );
    const m = await scrape(metrics);
    assert.ok((metricValue(m, 'whanau_setup_seconds_count', { result: 'done' }) ?? 0) >= 1);
    assert.ok((metricValue(m, 'whanau_setups_done') ?? 0) >= 1);
    assert.equal(metricValue(m, 'whanau_table_fill', { table: 'db' }), 0, 'a node alone: nothing to copy');
    assert.equal(metricValue(m, 'whanau_records_held'), 1, 'its own location record');
    const state = await getJson(`${url}api/state`);
    assert.equal(state.body.role, 'node');
    assert.match(state.body.whanau.hash, /^[0-9a-f]{40}$/);
    assert.ok(state.body.whanau.setups.last.ms >= 0);
    const out = await runCli(['status', '--http', url]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^node [0-9a-f]{40} {2}ready: SETUP done/);
    assert.match(out.stdout, /whanau: 0 social peers/);

    // Its dashboard shows the node's identity, neighbourhood, table fill and last SETUP.
    if (!existsSync(CHROMIUM)) return;
    const browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
    try {
      const page = await browser.newPage();
      await page.goto(url);
      await page.waitForFunction(
        "document.querySelector('#whanau-section') && !document.querySelector('#whanau-section').hidden",
        {
          timeout: 30_000,
        },
      );
      const text = await page.$eval('#whanau', (e) => e.textContent ?? '');
      assert.match(text, new RegExp(`identity ${state.body.whanau.hash}`));
      assert.match(text, /table fill: db 0/);
      assert.match(text, /last SETUP: epoch \d+/);
      assert.equal(
        await page.$eval('#ring-section', (e) => (e as { hidden?: boolean }).hidden),
        true,
        'no Chord ring here',
      );
    } finally {
      await browser.close();
    }
  });
});
