import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tls from 'node:tls';
import { type CliProcess, startCli, stopCli } from './cli-process.ts';

/**
 * A WhanauSIP node takes its phone over TLS too (RFC 3261 26.2): it listens on a port of its own, with a
 * certificate made at first start and kept in its data directory, and registers the phone sent over TLS.
 */
describe('a WhanauSIP node over TLS', { timeout: 90_000 }, () => {
  let dir = '';
  let node: CliProcess | undefined;
  let tlsPort = 0;
  let fingerprint = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'whanau-tls-'));
    node = await startCli('node', [
      ...['--sip', '127.0.0.1:0', '--dht', '127.0.0.1:0', '--data', join(dir, 'node')],
      ...['--expected-nodes', '3', '--setup-period', '3600', '--log-level', 'info'],
    ]);
    const line = node
      .stderr()
      .split('\n')
      .find((l) => l.includes('SIP TLS certificate sha256'));
    assert.ok(line, node.stderr());
    const j = JSON.parse(line);
    tlsPort = Number(String(j.tls).split(':').pop());
    fingerprint = j.fingerprint;
  });

  after(async () => {
    await stopCli(node);
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the certificate kept in its data directory and registers its phone over TLS', async () => {
    const kept = new X509Certificate(readFileSync(join(dir, 'node', 'sip-tls', 'cert.pem')));
    assert.equal(kept.fingerprint256, fingerprint);
    const s = tls.connect({ host: '127.0.0.1', port: tlsPort, rejectUnauthorized: false });
    await new Promise((r) => s.once('secureConnect', r));
    assert.equal(s.getPeerX509Certificate()?.fingerprint256, fingerprint);
    const hash = node?.hash ?? '';
    const reply = new Promise<string>((resolve) => {
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.includes('\r\n\r\n')) resolve(got);
      });
    });
    s.write(
      [
        `REGISTER sip:127.0.0.1:${tlsPort};transport=tls SIP/2.0`,
        `Via: SIP/2.0/TLS 127.0.0.1:${s.localPort};branch=z9hG4bK-whanau-tls;rport`,
        'Max-Forwards: 70',
        `From: <sip:${hash}@127.0.0.1>;tag=1`,
        `To: <sip:${hash}@127.0.0.1>`,
        'Call-ID: whanau-tls@test',
        'CSeq: 1 REGISTER',
        `Contact: <sip:${hash}@127.0.0.1:5071;transport=tls>`,
        'Expires: 600',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
    assert.match(await reply, /^SIP\/2\.0 200 /);
    s.destroy();
  });
});
