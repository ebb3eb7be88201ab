import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServerCertificate } from '../../src/identity/certificates.ts';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { type Phone, phoneCommand, registeredPhone, startPhone as startBaresip } from '../support/baresip.ts';
import { type AdapterProc, type BootstrapProc, eventually, startAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * SIP over TLS with SRTP end to end: two baresip phones register with their
 * adapters over TLS (RFC 3261 26.2), with mandatory SRTP keyed by SDES
 * (RFC 4568, `mediaenc=srtp-mand`). The verified 302 keeps `transport=tls`, the
 * caller's phone reaches the callee's phone over TLS, and the media between
 * them is SRTP: a raw capture on loopback sees RTP headers with encrypted,
 * authenticated payloads (the 10-byte HMAC-SHA1-80 tag, bytes spread like
 * noise), never plain G.711. The adapters never see the media keys: the SDP
 * travels phone to phone after the 302.
 */
const skip = !haveBinary('baresip')
  ? 'baresip is not installed'
  : !haveBinary('python3')
    ? 'python3 is not installed (raw loopback capture)'
    : process.getuid?.() !== 0
      ? 'a raw capture needs root'
      : false;

function tlsPortOf(a: AdapterProc): number {
  const m = /^sip-tls \S+:(\d+) sha256 ([0-9A-F:]{95})$/m.exec(a.stdout());
  assert.ok(m, `adapter printed no sip-tls line:\n${a.stdout()}`);
  return Number(m[1]);
}

async function startPhone(
  base: string,
  user: string,
  adapter: AdapterProc,
  cert: string,
  outboundProxy = false,
): Promise<Phone> {
  await eventually('sip-tls line', () => /^sip-tls /m.test(adapter.stdout()), 10_000, adapter.stdout);
  const port = tlsPortOf(adapter);
  return registeredPhone(
    user,
    (attempt) =>
      startBaresip(base, `${user}${attempt}`, `sip:${user}@127.0.0.1:${port};transport=tls`, {
        localTimeoutS: 30,
        tlsCert: cert,
        mediaenc: 'srtp-mand',
        outboundProxy: outboundProxy ? `sip:127.0.0.1:${port};transport=tls` : undefined,
      }),
    adapter.stderr,
    'registration over TLS',
  );
}

/** UDP payloads to or from `ports` on loopback for `seconds` (test/support/capture.py). */
function capture(ports: number[], seconds: number): Promise<Array<{ from: number; to: number; hex: string }>> {
  const p = spawn('python3', [join(import.meta.dirname, '../support/capture.py'), ports.join(','), String(seconds)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`capture failed: ${err}`))));
  });
}

/** The audio port of each SDP body baresip traced (`m=audio PORT PROTO ...`). */
function sdpAudio(out: string): Array<{ port: number; proto: string }> {
  return [...out.matchAll(/m=audio (\d+) (\S+)/g)].map((m) => ({ port: Number(m[1]), proto: m[2] }));
}

describe('SIP over TLS and SRTP between two baresip phones through two adapters', { skip, timeout: 180_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  const adapters: AdapterProc[] = [];
  const phones: Phone[] = [];
  let cert = '';

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-tls-'));
    const c = await createServerCertificate(['127.0.0.1']);
    cert = join(base, 'phone.pem');
    writeFileSync(cert, c.certPem + c.keyPem, { mode: 0o600 });
    boot = await startBootstrapProc(join(base, 'boot'));
    for (const name of ['A', 'B']) adapters.push(await startAdapterProc(boot.spec, join(base, name)));
  });

  after(async () => {
    for (const p of phones) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    for (const a of adapters) await a.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('registers over TLS, follows a 302 that keeps transport=tls, and the media is SRTP on the wire', async () => {
    const [A, B] = adapters;
    const bob = await startPhone(base, 'bob', B, cert);
    const alice = await startPhone(base, 'alice', A, cert);
    phones.push(bob, alice);
    // The REGISTER went over TLS to the adapter's TLS port.
    assert.match(
      alice.out(),
      new RegExp(`TLS 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${tlsPortOf(A)}\\s*\\r?\\nREGISTER `),
    );
    await phoneCommand(alice, 'dial', `sip:bob@127.0.0.1:${tlsPortOf(A)};transport=tls`);
    const established = (p: Phone) => () => /Call established/.test(p.out());
    await eventually('call establishment at bob', established(bob), 30_000, () => alice.out() + bob.out());
    await eventually('call establishment at alice', established(alice), 10_000, alice.out);
    // The verified 302 names bob's TLS contact, and alice's phone reached it over TLS.
    assert.match(alice.out(), /SIP\/2.0 302 [^\r\n]*[\s\S]*?Contact: <sip:bob[^>]*;transport=tls[^>]*>/);
    assert.match(bob.out(), /TLS 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+\s*\r?\nINVITE sip:bob/);
    assert.match(B.stderr(), /verified alice's INVITE; answering REDIRECT/);
    // SDES: both offers are RTP/SAVP with a crypto attribute; the keys went phone to phone only.
    const media = sdpAudio(bob.out());
    assert.ok(media.length >= 2, bob.out().slice(-3000));
    for (const m of media) assert.equal(m.proto, 'RTP/SAVP');
    assert.match(bob.out(), /a=crypto:\d+ AES_CM_128_HMAC_SHA1_80 inline:/);
    for (const p of [alice, bob]) assert.match(p.out(), /SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_80\)/);
    assert.doesNotMatch(A.stderr() + B.stderr(), /inline:/, 'no media key in the adapters’ logs');

    const packets = (await capture([...new Set(media.map((m) => m.port))], 2)).filter((p) => p.hex.startsWith('80'));
    assert.ok(packets.length >= 20, `RTP flows both ways (${packets.length} packets seen)`);
    const pcmuLength = 12 + 160;
    const srtpLength = pcmuLength + 10;
    for (const p of packets) assert.equal(p.hex.length / 2, srtpLength, 'every packet carries the SRTP auth tag');
    // Encrypted payloads look like noise: every byte value, none much more frequent than 1/256.
    const counts = new Array<number>(256).fill(0);
    let total = 0;
    for (const p of packets.slice(0, 100)) {
      const b = Buffer.from(p.hex, 'hex').subarray(12, pcmuLength);
      for (const x of b) counts[x]++;
      total += b.length;
    }
    assert.ok(counts.filter((n) => n > 0).length >= 250, 'payload bytes take (almost) every value');
    assert.ok(Math.max(...counts) / total < 0.02, 'no payload byte value dominates, as it would in plain G.711');
    await phoneCommand(alice, 'hangup', '');
    await eventually('bob sees the hang-up', () => /Call terminated|closed/i.test(bob.out()), 10_000, bob.out);
  });

  it('with her adapter as outbound proxy over TLS, the redirected INVITE is proxied over TLS and the call is SRTP', async () => {
    const [A, B] = adapters;
    const dave = await startPhone(base, 'dave', B, cert);
    const carol = await startPhone(base, 'carol', A, cert, true);
    phones.push(dave, carol);
    await phoneCommand(carol, 'dial', `sip:dave@127.0.0.1:${tlsPortOf(A)};transport=tls`);
    const established = (p: Phone) => () => /Call established/.test(p.out());
    await eventually('call establishment at dave', established(dave), 30_000, () => carol.out() + dave.out());
    await eventually('call establishment at carol', established(carol), 10_000, carol.out);
    assert.equal((carol.out().match(/SIP\/2.0 302 /g) ?? []).length, 1, 'exactly one 302, no loop');
    // The second INVITE went back to adapter A over TLS, which proxied it to dave's phone over TLS.
    assert.match(
      carol.out(),
      new RegExp(`TLS 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${tlsPortOf(A)}\\s*\\r?\\nINVITE sip:dave-`),
    );
    assert.match(
      dave.out(),
      new RegExp(`INVITE sip:dave-[^\\r\\n]*\\r?\\nVia: SIP/2.0/TLS 127\\.0\\.0\\.1:${tlsPortOf(A)};`),
    );
    for (const p of [carol, dave]) assert.match(p.out(), /SRTP is Enabled/);
  });
});
