import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CertificateAuthority, createCa, issueCertificate } from '../../src/identity/certificates.ts';
import { Identity } from '../../src/identity/identity.ts';
import {
  type RunningAdapter,
  type RunningBootstrap,
  startAdapterDaemon,
  startBootstrapDaemon,
} from '../../src/secp2psip/daemon.ts';
import { SipElement } from '../../src/sip/element.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import { UserAgent } from '../../src/sip/user-agent.ts';
import { SystemClock } from '../../src/util/clock.ts';

/**
 * Strict mode (seed 000 IV.2 "Bootstrap Verification" with a CA): the
 * bootstrap has a CA bundle and accepts a user only with a certificate that
 * chains to it, is issued for the user's key and names the user.
 */
describe('strict mode: users need a certificate from the configured CA', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'secp2psip-strict-'));
  const users = join(dir, 'adapter', 'users');
  let ca: CertificateAuthority;
  let boot: RunningBootstrap;
  let adapter: RunningAdapter;
  const closers: Array<() => Promise<void>> = [];

  /** The user's key where the adapter keeps it, and a certificate for it from `issuer` naming `cn`. */
  async function certify(name: string, issuer: CertificateAuthority, cn = name): Promise<void> {
    const id = Identity.loadOrCreate(join(users, `${name}.pem`));
    const cert = await issueCertificate(issuer, id.publicSigningKey, `CN=${cn}`, 30);
    writeFileSync(join(users, `${name}.crt`), cert.pem);
  }

  async function register(user: string): Promise<{ status: number; reason: string }> {
    const transport = await TransportStack.listen({ host: '127.0.0.1', port: 0 });
    const element = new SipElement({ transport, clock: new SystemClock() });
    closers.push(() => element.close());
    const ua = new UserAgent({ element }, { user, domain: '127.0.0.1' });
    const [address, port] = adapter.sipAddr.split(':');
    return ua.register({ transport: 'UDP', address, port: Number(port) });
  }

  before(async () => {
    ca = await createCa({ subject: 'CN=Example Telephony CA' });
    boot = await startBootstrapDaemon({
      host: '127.0.0.1',
      port: 0,
      dataDir: join(dir, 'boot'),
      k: 2,
      n: 3,
      caBundle: [ca.certPem],
    });
    closers.push(() => boot.close());
    mkdirSync(users, { recursive: true, mode: 0o700 });
    adapter = await startAdapterDaemon({
      openRegistration: true,
      sipHost: '127.0.0.1',
      sipPort: 0,
      bootstrap: boot.info,
      dataDir: join(dir, 'adapter'),
    });
    closers.push(() => adapter.close());
  });

  after(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
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
