import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'puppeteer-core';
import {
  type AdapterProc,
  type BootstrapProc,
  eventually,
  startAuthAdapterProc,
  startBootstrapProc,
} from '../secp2psip/procs.ts';
import { runCli } from '../support/cli.ts';
import { BrowserPhone, haveChromium, launchBrowser } from './browser.ts';

/**
 * Two browser phones on two adapters (RFC 7118 over WSS, pages served by the
 * adapters at /phone): each registers with a password (digest), alice calls
 * bob, bob sees that the overlay verified alice, answers, and both peer
 * connections receive RTP (WebRTC: DTLS-SRTP); either side hangs up.
 */
const skip = haveChromium() ? false : 'chromium is not installed';

function phoneUrl(a: AdapterProc): string {
  const m = /^phone (https:\/\/\S+\/phone)$/m.exec(a.stdout());
  assert.ok(m, `adapter printed no phone line:\n${a.stdout()}`);
  return m[1];
}

describe('browser phones over WSS on two adapters', { skip, timeout: 180_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  const adapters: AdapterProc[] = [];
  let browser: Browser | undefined;
  let alice: BrowserPhone;
  let bob: BrowserPhone;

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-browser-'));
    boot = await startBootstrapProc(join(base, 'boot'));
    for (const [dir, user] of [
      ['A', 'alice'],
      ['B', 'bob'],
    ]) {
      const r = await runCli([
        'adapter',
        '--data',
        join(base, dir),
        '--add-user',
        user,
        '--password',
        `${user}-password`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      adapters.push(await startAuthAdapterProc(boot.spec, join(base, dir)));
    }
    for (const a of adapters) await eventually('phone line', () => /^phone /m.test(a.stdout()), 10_000, a.stdout);
    browser = await launchBrowser();
    alice = await BrowserPhone.open(browser, phoneUrl(adapters[0]), 'alice');
    bob = await BrowserPhone.open(browser, phoneUrl(adapters[1]), 'bob');
  });

  after(async () => {
    await browser?.close();
    for (const a of adapters) await a.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('registers with a password over WSS', async () => {
    await alice.do('register', 'alice', 'alice-password');
    await bob.do('register', 'bob', 'bob-password');
    await alice.until('registration', (s) => s.registered);
    await bob.until('registration', (s) => s.registered);
  });

  it('alice calls bob: bob sees a verified alice, answers, RTP flows both ways, bob hangs up', async () => {
    await alice.do('call', 'bob');
    const ringing = await bob.until('ringing', (s) => s.ringing);
    assert.deepEqual(ringing.incoming && { from: ringing.incoming.from, verified: ringing.incoming.verified }, {
      from: 'alice',
      verified: true,
    });
    assert.match(await bob.text('#caller'), /alice is calling: verified by the overlay/);
    await bob.do('answer');
    await alice.until('call up', (s) => s.inCall);
    await bob.until('call up', (s) => s.inCall);
    const [a, b] = await Promise.all([alice.mediaFlowing(), bob.mediaFlowing()]);
    for (const m of [a, b]) {
      assert.ok(m.packetsSent > 0);
      assert.equal(m.dtls?.state, 'connected', 'media keyed by DTLS-SRTP');
    }
    assert.match(adapters[1].stderr(), /verified alice's INVITE; answering REDIRECT/);
    await bob.do('hangup');
    const ended = await alice.until('hang-up seen', (s) => s.log.length >= 1);
    // JsSIP's cause for a BYE received is "Terminated".
    assert.deepEqual(
      [ended.log[0].established, ended.log[0].endedBy, ended.log[0].cause],
      [true, 'remote', 'Terminated'],
    );
    await bob.until('call ended', (s) => s.log.length >= 1 && !s.inCall);
  });

  it('bob calls alice back; alice answers and hangs up', async () => {
    await bob.do('call', 'alice');
    const ringing = await alice.until('ringing', (s) => s.ringing);
    assert.equal(ringing.incoming?.from, 'bob');
    assert.equal(ringing.incoming?.verified, true);
    await alice.do('answer');
    await Promise.all([alice.mediaFlowing(), bob.mediaFlowing()]);
    await alice.do('hangup');
    const ended = await bob.until('hang-up seen', (s) => s.log.length >= 2);
    assert.deepEqual(
      [ended.log[1].established, ended.log[1].endedBy, ended.log[1].cause],
      [true, 'remote', 'Terminated'],
    );
  });
});
