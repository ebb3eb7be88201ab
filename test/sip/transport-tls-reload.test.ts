import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { createServerCertificate } from '../../src/identity/certificates.ts';
import { runCli } from '../support/cli.ts';
import { type Running, startRegistrar } from './e2e-helpers.ts';

/**
 * SIP over TLS on a real daemon (the registrar) with the operator's
 * certificate files, and their reload on SIGHUP: a new connection sees the new
 * certificate, a connection opened before keeps working, and a broken file
 * leaves the previous certificate in place.
 */
async function writePair(dir: string): Promise<string> {
  const c = await createServerCertificate(['127.0.0.1']);
  writeFileSync(join(dir, 'cert.pem'), c.certPem);
  writeFileSync(join(dir, 'key.pem'), c.keyPem, { mode: 0o600 });
  return new X509Certificate(c.certPem).fingerprint256;
}

function connectTls(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

let seq = 0;
/** One OPTIONS over the connection; resolves with the response's status line. */
function options(s: tls.TLSSocket, port: number): Promise<string> {
  seq++;
  const msg = [
    `OPTIONS sip:127.0.0.1:${port};transport=tls SIP/2.0`,
    `Via: SIP/2.0/TLS 127.0.0.1:${s.localPort};branch=z9hG4bK-reload-${seq};rport`,
    'Max-Forwards: 70',
    `From: <sip:probe@127.0.0.1>;tag=t${seq}`,
    `To: <sip:127.0.0.1:${port}>`,
    `Call-ID: reload-${seq}@127.0.0.1`,
    `CSeq: ${seq} OPTIONS`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      if (!got.includes('\r\n\r\n')) return;
      s.off('data', onData);
      resolve(got.split('\r\n')[0]);
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(msg);
  });
}

async function until(what: string, check: () => boolean, detail: () => string): Promise<void> {
  const end = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > end) assert.fail(`${what} did not happen:\n${detail().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('SIP over TLS with certificate files reloaded on SIGHUP', { timeout: 60_000 }, () => {
  let dir = '';
  let reg: Running;
  let tlsPort = 0;
  let first = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'secp2psip-tls-reload-'));
    first = await writePair(dir);
    reg = await startRegistrar([
      '--sip-tls-cert',
      join(dir, 'cert.pem'),
      '--sip-tls-key',
      join(dir, 'key.pem'),
      '--log-level',
      'info',
    ]);
    const line = reg
      .stderr()
      .split('\n')
      .find((l) => l.includes('registrar listening'));
    tlsPort = Number(/:(\d+)$/.exec(JSON.parse(line ?? '{}').tls ?? '')?.[1]);
    assert.ok(tlsPort > 0, reg.stderr());
  });

  after(() => {
    reg?.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers over TLS with the configured certificate, and logs its fingerprint', async () => {
    const s = await connectTls(tlsPort);
    assert.equal(s.getPeerX509Certificate()?.fingerprint256, first);
    assert.match(await options(s, tlsPort), /^SIP\/2\.0 200 /);
    assert.ok(reg.stderr().includes(`SIP TLS certificate sha256 ${first}`));
    s.destroy();
  });

  it('SIGHUP: new connections get the new certificate, an open one keeps working, a bad file changes nothing', async () => {
    const old = await connectTls(tlsPort);
    assert.match(await options(old, tlsPort), /^SIP\/2\.0 200 /);
    const second = await writePair(dir);
    assert.notEqual(second, first);
    reg.proc.kill('SIGHUP');
    await until('reload', () => reg.stderr().includes(`TLS certificate reloaded: sha256 ${second}`), reg.stderr);
    const fresh = await connectTls(tlsPort);
    assert.equal(fresh.getPeerX509Certificate()?.fingerprint256, second);
    assert.match(await options(fresh, tlsPort), /^SIP\/2\.0 200 /);
    // The connection opened before the reload is still up, with the certificate it was opened with.
    assert.equal(old.getPeerX509Certificate()?.fingerprint256, first);
    assert.match(await options(old, tlsPort), /^SIP\/2\.0 200 /);

    writeFileSync(join(dir, 'cert.pem'), 'not a certificate\n');
    reg.proc.kill('SIGHUP');
    await until('refused reload', () => reg.stderr().includes('TLS certificate not reloaded'), reg.stderr);
    const third = await connectTls(tlsPort);
    assert.equal(third.getPeerX509Certificate()?.fingerprint256, second, 'the previous certificate stays');
    assert.equal(reg.proc.exitCode, null, 'still running');
    for (const s of [old, fresh, third]) s.destroy();
  });

  it('bad TLS options: one line naming the problem, non-zero exit', async () => {
    const half = await runCli(['registrar', '--listen', '127.0.0.1:0', '--sip-tls-cert', join(dir, 'cert.pem')]);
    assert.notEqual(half.code, 0);
    assert.match(half.stderr, /--sip-tls-cert and --sip-tls-key go together/);
    const port = await runCli(['registrar', '--listen', '127.0.0.1:65535']);
    assert.notEqual(port.code, 0);
    assert.match(port.stderr, /--sip-tls: the --listen port \+ 1 is past 65535/);
    writeFileSync(join(dir, 'bad.pem'), 'junk\n');
    const bad = await runCli([
      'registrar',
      '--listen',
      '127.0.0.1:0',
      '--sip-tls-cert',
      join(dir, 'bad.pem'),
      '--sip-tls-key',
      join(dir, 'key.pem'),
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /TLS certificate .*bad\.pem: not a PEM certificate/);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  });
});
