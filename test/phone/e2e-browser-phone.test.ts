import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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
import { writeFileSync } from 'node:fs';
import { createServerCertificate } from '../../src/identity/certificates.ts';
import { freePort, haveBinary } from '../sip/e2e-helpers.ts';
import { type Phone, phoneCommand, startPhone } from '../support/baresip.ts';
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
  let carol: Phone | undefined;

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
    if (carol && carol.proc.exitCode === null) carol.proc.kill('SIGKILL');
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

  /** carol: a baresip phone over TLS with DTLS-SRTP, ICE and RTCP multiplexing, as WebRTC requires. */
  async function startCarol(): Promise<{ phone: Phone; tlsPort: number }> {
    const c = await createServerCertificate(['127.0.0.1']);
    const pem = join(base, 'carol.pem');
    writeFileSync(pem, c.certPem + c.keyPem, { mode: 0o600 });
    // baresip 1.0 gives up on a SHA-256 challenge: its adapter lets phones register without a password.
    const C = await startAuthAdapterProc(boot.spec, join(base, 'C'), '127.0.0.1:0', ['--open-registration']);
    adapters.push(C);
    await eventually('sip-tls line', () => /^sip-tls /m.test(C.stdout()), 10_000, C.stdout);
    const tlsPort = Number(/^sip-tls \S+:(\d+) /m.exec(C.stdout())?.[1]);
    for (let attempt = 1; ; attempt++) {
      const phone = await startPhone(base, `carol${attempt}`, `sip:carol@127.0.0.1:${tlsPort};transport=tls`, {
        tlsCert: pem,
        mediaenc: 'dtls_srtp',
        medianat: 'ice',
        rtcpMux: true,
        localTimeoutS: 30,
      });
      const ok = () => /carol@127\.0\.0\.1.*200 OK/.test(phone.out());
      await eventually('carol registration', () => ok() || phone.proc.exitCode !== null, 40_000, phone.out);
      if (ok()) return { phone, tlsPort };
      if (attempt === 3) assert.fail(`carol: baresip exited:\n${phone.out()}`);
    }
  }

  it('a browser calls a baresip phone over TLS and back, with DTLS-SRTP media', {
    skip: !haveBinary('baresip') && 'baresip is not installed',
  }, async () => {
    const { phone, tlsPort } = await startCarol();
    carol = phone;
    await alice.do('call', 'carol');
    await eventually('carol answers', () => /Call established/.test(phone.out()), 30_000, phone.out);
    await alice.until('call up', (s) => s.inCall);
    const m = await alice.mediaFlowing();
    assert.equal(m.dtls?.state, 'connected');
    assert.match(phone.out(), /UDP\/TLS\/RTP\/SAVPF/);
    assert.match(phone.out(), /verified sha-256 fingerprint OK[\s\S]*DTLS-SRTP complete/);
    await alice.do('hangup');
    await eventually(
      'carol sees the hang-up',
      () => /terminated|closed/i.test(phone.out().split('Call established').pop() ?? ''),
      10_000,
      phone.out,
    );

    const before = (await alice.state()).log.length;
    await phoneCommand(phone, 'dial', `sip:alice@127.0.0.1:${tlsPort};transport=tls`);
    const ringing = await alice.until('ringing', (s) => s.ringing);
    assert.equal(ringing.incoming?.from, 'carol');
    assert.equal(ringing.incoming?.verified, true);
    await alice.do('answer');
    await alice.until('call up', (s) => s.inCall);
    await alice.mediaFlowing();
    await phoneCommand(phone, 'hangup', '');
    const ended = await alice.until('hang-up seen', (s) => s.log.length > before);
    assert.deepEqual([ended.log[before].established, ended.log[before].endedBy], [true, 'remote']);
  });

  it('with a TURN server and relay only, the media goes through the relay', {
    skip: !haveBinary('turnserver') && 'coturn is not installed',
  }, async () => {
    const port = await freePort();
    const turn = spawn(
      'turnserver',
      [
        ...['-n', '--listening-ip', '127.0.0.1', '--listening-port', String(port), '--relay-ip', '127.0.0.1'],
        ...['--lt-cred-mech', '--user', 'phone:turn-secret', '--realm', 'secp2psip'],
        ...[
          '--no-tls',
          '--no-dtls',
          '--no-cli',
          '--allow-loopback-peers',
          '--min-port',
          '40000',
          '--max-port',
          '40100',
        ],
        ...['--log-file', 'stdout', '--simple-log', '--verbose'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    turn.stdout.on('data', (d: Buffer) => (log += d.toString()));
    turn.stderr.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 1000));
      for (const p of [alice, bob])
        await p.setIce(`turn:127.0.0.1:${port}?transport=udp`, 'phone', 'turn-secret', true);
      const before = (await bob.state()).log.length;
      await alice.do('call', 'bob');
      await bob.until('ringing', (s) => s.ringing);
      await bob.do('answer');
      const [a, b] = await Promise.all([alice.mediaFlowing(), bob.mediaFlowing()]);
      for (const m of [a, b]) assert.deepEqual(m.pair, { local: 'relay', remote: 'relay' }, JSON.stringify(m));
      assert.match(
        log,
        /ALLOCATE processed, success/,
        `the phones allocated relays on the TURN server:\n${log.slice(-1500)}`,
      );
      await alice.do('hangup');
      const ended = await bob.until('hang-up seen', (s) => s.log.length > before);
      assert.deepEqual([ended.log[before].established, ended.log[before].endedBy], [true, 'remote']);
    } finally {
      for (const p of [alice, bob]) await p.setIce('', '', '', false);
      turn.kill('SIGKILL');
    }
  });
});
