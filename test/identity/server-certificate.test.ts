import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createServerCertificate } from '../../src/identity/certificates.ts';
import {
  generatedCertificateFiles,
  loadServerCertificate,
  readServerCertificate,
  reloadServerCertificate,
} from '../../src/identity/server-certificate.ts';

describe('the certificate phones see on TLS and WSS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'server-cert-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is made at first start in the data directory (key 0600), then reused with the same fingerprint', async () => {
    const data = join(dir, 'data');
    const first = await loadServerCertificate({ dataDir: data, names: ['127.0.0.1', 'localhost'] });
    assert.equal(first.created, true);
    const files = generatedCertificateFiles(data);
    assert.equal(first.certFile, files.certFile);
    assert.equal(statSync(files.keyFile).mode & 0o777, 0o600);
    const x = new X509Certificate(first.cert);
    assert.equal(x.fingerprint256, first.fingerprint);
    assert.match(first.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.ok(x.checkIP('127.0.0.1'), 'names the address phones dial');
    assert.ok(x.checkHost('localhost'));
    const again = await loadServerCertificate({ dataDir: data, names: ['127.0.0.1'] });
    assert.equal(again.created, false);
    assert.equal(again.fingerprint, first.fingerprint);
  });

  it('without a data directory, lives in memory and reload keeps it', async () => {
    const c = await loadServerCertificate({ names: ['127.0.0.1'] });
    assert.equal(c.certFile, undefined);
    assert.equal(reloadServerCertificate(c), c);
  });

  it('configured files are read, reloaded after replacement, and refused with one clear line when unusable', async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const a = await createServerCertificate(['127.0.0.1']);
    writeFileSync(cert, a.certPem);
    writeFileSync(key, a.keyPem, { mode: 0o600 });
    const loaded = await loadServerCertificate({
      certFile: cert,
      keyFile: key,
      dataDir: join(dir, 'unused'),
      names: [],
    });
    assert.equal(loaded.fingerprint, new X509Certificate(a.certPem).fingerprint256);
    const b = await createServerCertificate(['127.0.0.1']);
    writeFileSync(cert, b.certPem);
    writeFileSync(key, b.keyPem, { mode: 0o600 });
    assert.equal(reloadServerCertificate(loaded).fingerprint, new X509Certificate(b.certPem).fingerprint256);

    // A key that is not the certificate's.
    writeFileSync(key, a.keyPem, { mode: 0o600 });
    assert.throws(
      () => readServerCertificate(cert, key),
      /TLS key .*key\.pem: the key does not belong to the certificate/,
    );
    // A key others can read.
    writeFileSync(key, b.keyPem);
    chmodSync(key, 0o644);
    assert.throws(() => readServerCertificate(cert, key), /accessible by others/);
    chmodSync(key, 0o600);
    // Not a certificate; a missing file.
    writeFileSync(cert, 'junk\n');
    assert.throws(() => readServerCertificate(cert, key), /not a PEM certificate/);
    assert.throws(() => readServerCertificate(join(dir, 'none.pem'), key), /TLS certificate .*none\.pem: ENOENT/);
    await assert.rejects(loadServerCertificate({ certFile: cert, names: [] }), /go together/);
  });
});
