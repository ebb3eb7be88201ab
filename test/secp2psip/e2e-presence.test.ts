import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { type Phone, phoneCommand, registeredPhone, startPhone as startBaresip } from '../support/baresip.ts';
import { type AdapterProc, type BootstrapProc, eventually, startAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * Presence (RFC 3856, PIDF RFC 3863) seen by a real phone: bob's baresip
 * (presence module) subscribes to `sip:alice@<his adapter>`; alice's baresip
 * registers at another adapter, publishes (RFC 3903) closed and open, and
 * quits. Bob's phone gets a NOTIFY for each change, each carrying only what
 * alice's adapter signed.
 */
const skip = haveBinary('baresip') ? false : 'baresip is not installed';

/** PUBLISH (RFC 3903) an open status with `note` for `user` at the adapter's SIP port; resolves with the status. */
function publishNote(port: number, user: string, note: string): Promise<number> {
  const s = createSocket('udp4');
  const pidf =
    '<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" ' +
    `entity="sip:${user}@127.0.0.1:${port}"><tuple id="x"><status><basic>open</basic></status></tuple>` +
    `<note>${note}</note></presence>\r\n`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer to PUBLISH')), 20_000);
    s.on('message', (buf) => {
      const m = /^SIP\/2\.0 (\d{3})/.exec(buf.toString());
      if (!m || Number(m[1]) < 200) return;
      clearTimeout(timer);
      s.close();
      resolve(Number(m[1]));
    });
    s.bind(0, '127.0.0.1', () => {
      const me = s.address().port;
      const text =
        `PUBLISH sip:${user}@127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${me};branch=z9hG4bKpub${me};rport\r\n` +
        `Max-Forwards: 70\r\nFrom: <sip:${user}@127.0.0.1:${port}>;tag=p${me}\r\nTo: <sip:${user}@127.0.0.1:${port}>\r\n` +
        `Call-ID: pub${me}@test\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 600\r\n` +
        `Content-Type: application/pidf+xml\r\nContent-Length: ${Buffer.byteLength(pidf)}\r\n\r\n${pidf}`;
      s.send(text, port, '127.0.0.1');
    });
  });
}

/** The <basic> values of the NOTIFYs `phone` received, in order. */
function notified(phone: Phone): string[] {
  return [...phone.out().matchAll(/^NOTIFY sip:[\s\S]*?<basic>(\w+)<\/basic>/gm)].map((m) => m[1]);
}

describe('presence seen by a real phone through two adapters', { skip, timeout: 240_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  let A: AdapterProc;
  let B: AdapterProc;
  const phones: Phone[] = [];

  async function baresip(user: string, adapter: AdapterProc, opts: { watch?: string; pubint?: boolean } = {}) {
    const aor = `sip:${user}@127.0.0.1:${adapter.sipPort}`;
    const phone = await registeredPhone(
      user,
      () =>
        startBaresip(base, user, aor, {
          modules: ['contact.so', 'presence.so'],
          contacts: opts.watch ? [`<sip:${opts.watch}@127.0.0.1:${adapter.sipPort}>;presence=p2p`] : [],
          // baresip publishes its presence (RFC 3903) only with a publish interval on the account.
          accountParams: opts.pubint ? ';pubint=60' : undefined,
        }),
      adapter.stderr,
    );
    phones.push(phone);
    return phone;
  }

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-presence-'));
    boot = await startBootstrapProc(join(base, 'boot'));
    A = await startAdapterProc(boot.spec, join(base, 'A'));
    B = await startAdapterProc(boot.spec, join(base, 'B'));
  });

  after(async () => {
    for (const p of phones) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    await A?.stop();
    await B?.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it("bob's phone is notified when alice registers, publishes closed and open, and unregisters", async () => {
    const alice = await baresip('alice', A, { pubint: true });
    const bob = await baresip('bob', B, { watch: 'alice' });
    const detail = () =>
      `${bob.out().slice(-4000)}\n--- B ---\n${B.stderr().slice(-3000)}\n--- A ---\n${A.stderr().slice(-3000)}`;
    await eventually('NOTIFY open', () => notified(bob).includes('open'), 30_000, detail);
    const first = bob.out().match(/^NOTIFY sip:[\s\S]*?<\/presence>/m)?.[0] ?? '';
    assert.match(first, /^Event: presence/m);
    assert.match(first, /^Content-Type: application\/pidf\+xml/m);
    assert.match(first, new RegExp(`^From: <sip:alice@127\\.0\\.0\\.1:${B.sipPort}>;tag=`, 'm'));
    assert.match(first, /entity="sip:alice@127\.0\.0\.1:/);

    const seen = notified(bob).length;
    await phoneCommand(alice, 'presence_offline', '');
    await eventually('NOTIFY closed after PUBLISH', () => notified(bob).slice(seen).includes('closed'), 30_000, detail);
    const closedAt = notified(bob).length;
    await phoneCommand(alice, 'presence_online', '');
    await eventually('NOTIFY open after PUBLISH', () => notified(bob).slice(closedAt).includes('open'), 30_000, detail);

    // A PUBLISH with a note (RFC 3903; baresip 1.0 publishes no notes, so this one comes from a plain UDP UA).
    const noted = publishNote(A.sipPort, 'alice', 'busy &amp; on a call');
    assert.equal(await noted, 200);
    await eventually(
      'NOTIFY with the note',
      () => /<note>busy &#38; on a call<\/note>/.test(bob.out()),
      30_000,
      detail,
    );

    // Alice's phone quits: it unregisters, her adapter pushes closed, bob's phone is told.
    const openAt = notified(bob).length;
    alice.proc.kill('SIGTERM');
    await eventually(
      'NOTIFY closed after quitting',
      () => notified(bob).slice(openAt).includes('closed'),
      30_000,
      detail,
    );
    assert.match(B.stderr(), /"watcher":"bob","presentity":"alice"[^\n]*presence subscription accepted/);
  });
});
