import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { eventually } from '../secp2psip/procs.ts';
import { SipClient } from '../support/sip-client.ts';
import { type Daemon, getJson, spawnDaemon } from './ops-procs.ts';

/**
 * The live dashboard in a real browser (chromium driven by puppeteer-core):
 * `secp2psip demo` serves it; the page must draw every ring member, then a
 * call placed by the test's SIP client must show up as a ladder with its
 * steps, pushed by server-sent events without a reload. The screenshot goes
 * to a temporary directory; with UPDATE_SCREENSHOT=1 it replaces the README's
 * (docs/dashboard.png), so an ordinary run leaves the tree as it was.
 */
const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`;
const SCREENSHOT = process.env.UPDATE_SCREENSHOT
  ? new URL('../../docs/dashboard.png', import.meta.url).pathname
  : join(mkdtempSync(join(tmpdir(), 'dashboard-')), 'dashboard.png');
const CALL_ID = 'dashboard-test-call@client';

describe('live dashboard in chromium', { skip, timeout: 180_000 }, () => {
  let demo: Daemon;
  let browser: Browser;
  let page: Page;
  let url = '';
  let adapters: number[] = [];
  let zoe: SipClient | undefined;

  before(async () => {
    demo = spawnDaemon(['demo', '--adapters', '4', '--calls', '3', '--log-level', 'warn']);
    await eventually('the demo up', () => /other adapters: /.test(demo.stdout()), 120_000, demo.stderr);
    url = (/dashboard (http:\/\/\S+)/.exec(demo.stdout()) as RegExpExecArray)[1];
    adapters = ((/other adapters: (.*)$/m.exec(demo.stdout()) as RegExpExecArray)[1] ?? '')
      .trim()
      .split(' ')
      .map((a) => Number(a.split(':')[1]));
    browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
    page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
  });

  after(async () => {
    zoe?.close();
    await browser?.close();
    await demo?.stop();
  });

  it('draws every ring member, the bootstrap among them, and the users', async () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    await page.goto(url);
    const state = (await getJson(`${url}api/state`)).body;
    const ids: string[] = state.ring.members.map((m: { id: string }) => m.id).sort();
    assert.equal(ids.length, 5, 'the bootstrap and 4 adapters');
    await page.waitForFunction("document.querySelectorAll('#ring g.member').length === 5", { timeout: 30_000 });
    const drawn = await page.$$eval('#ring g.member', (gs) => gs.map((g) => g.getAttribute('data-member-id')).sort());
    assert.deepEqual(drawn, ids);
    assert.equal(await page.$$eval('#ring g.member.bootstrap', (gs) => gs.length), 1);
    // Each member's successor link, as the ring is settled.
    assert.equal(await page.$$eval('#ring path.succ-link', (ps) => ps.length), 5);
    const records = await page.$$eval('#members tbody tr td:nth-child(4)', (tds) => tds.map((t) => t.textContent));
    assert.ok(
      records.every((r) => /^\d+$/.test(r ?? '')),
      `every member's record count shown: ${records}`,
    );
    const users = await page.$$eval('#users tbody tr', (trs) => trs.map((t) => t.getAttribute('data-user')));
    assert.deepEqual(users.sort(), ['alice', 'bob', 'carol', 'dave']);
    assert.equal(await page.$eval('#live', (e) => e.textContent), 'live');
  });

  it('shows a call placed now as a ladder with its steps, live', async () => {
    zoe = await SipClient.open(adapters[0]);
    const aor = `sip:zoe@127.0.0.1:${adapters[0]}`;
    const reg = await zoe.request({
      method: 'REGISTER',
      uri: `sip:127.0.0.1:${adapters[0]}`,
      from: aor,
      to: aor,
      contact: `<sip:zoe@127.0.0.1:${zoe.port}>`,
      expires: 600,
    });
    assert.equal(reg.status, 200);
    const call = await zoe.request({
      method: 'INVITE',
      uri: `sip:carol@127.0.0.1:${adapters[0]}`,
      from: aor,
      contact: `<sip:zoe@127.0.0.1:${zoe.port}>`,
      callId: CALL_ID,
    });
    assert.equal(call.status, 302);
    const sel = `.call[data-call-id="${CALL_ID}"]`;
    await page.waitForSelector(sel, { timeout: 30_000 });
    const steps = await page.$$eval(`${sel} [data-step]`, (es) => es.map((e) => e.getAttribute('data-step')));
    assert.deepEqual(steps, ['phone-invite', 'secp2psip-invite', 'secp2psip-redirect', 'final-302', 'verified']);
    const text = await page.$eval(sel, (e) => e.textContent ?? '');
    assert.match(text, /zoe → carol/);
    assert.match(text, /verified 302/);
    assert.match(text, /signed mode/);
    assert.match(text, /SECP2PSIP REDIRECT/);
    // Each step with its time.
    assert.equal((text.match(/\d+\.\d ms/g) ?? []).length >= 5, true, text);
    await page.waitForFunction("document.querySelectorAll('#users tbody tr').length === 5", { timeout: 30_000 });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(statSync(SCREENSHOT).size > 10_000, 'the screenshot holds a rendered page');
  });
});
