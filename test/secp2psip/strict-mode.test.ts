import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CertificateAuthority, createCa, issueCertificate } from '../../src/identity/certificates.ts';
import { Identity } from '../../src/identity/identity.ts';
import type { RunningAdapter, RunningBootstrap } from '../../src/secp2psip/daemon.ts';
import { DaemonPair } from './daemon-pair.ts';
import { TestPhones, udpPeer } from './phones.ts';

/**
 * Strict mode (seed 000 IV.2 "Bootstrap Verification" with a CA): the
 * bootstrap has a CA bundle and accepts a user only with a certificate that
 * chains to it, is issued for the user's key and names the user.
 */
describe('strict mode: users need a certificate from the configured CA', { timeout: 60_000 }, () => {
  let pair: DaemonPair;
  let users = '';
  let ca: CertificateAuthority;
  let boot: RunningBootstrap;
  let adapter: RunningAdapter;
  const phones = new TestPhones();

  /** The user's key where the adapter keeps it, and a certificate for it from `issuer` naming `cn`. */
  async function certify(name: string, issuer: CertificateAuthority, cn = name): Promise<void> {
    const id = Identity.loadOrCreate(join(users, `${name}.pem`));
    const cert = await issueCertificate(issuer, id.publicSigningKey, `CN=${cn}`, 30);
    writeFileSync(join(users, `${name}.crt`), cert.pem);
  }

  async function register(user: string): Promise<{ status: number; reason: string }> {
    return (await phones.add(user, false)).register(udpPeer(adapter.sipAddr));
  }

  before(async () => {
    ca = await createCa({ subject: 'CN=Example Telephony CA' });
    pair = await DaemonPair.start('secp2psip-strict-', { bootstrap: { k: 2, n: 3, caBundle: [ca.certPem] } });
    boot = pair.boot;
    users = join(pair.dir, 'adapter', 'users');
    mkdirSync(users, { recursive: true, mode: 0o700 });
    adapter = await pair.adapter('adapter');
  });

  after(async () => {
    await phones.close();
    await pair?.close();
  });

  it('a user with a certificate from the CA for her key and name is registered', async () => {
    await certify('alice', ca);
    const r = await register('alice');
    assert.equal(r.status, 200, r.reason);
    assert.equal(boot.server.registry.get('alice')?.name, 'alice');
  });

  it('a user without a certificate is refused with the reason', async () => {
    const r = await register('mallory');
    assert.equal(r.status, 403);
    assert.match(r.reason, /strict mode needs a certificate/);
    assert.equal(boot.server.registry.get('mallory'), undefined);
  });

  it('a certificate naming someone else is refused', async () => {
    await certify('eve', ca, 'alice');
    const r = await register('eve');
    assert.equal(r.status, 403);
    assert.match(r.reason, /does not name 'eve'/);
  });

  it('a certificate from another CA is refused', async () => {
    const other = await createCa({ subject: 'CN=Example Telephony CA' }); // same name, other key
    await certify('bob', other);
    const r = await register('bob');
    assert.equal(r.status, 403);
    assert.equal(boot.server.registry.get('bob'), undefined);
  });
});
