import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect, createServer } from 'node:tls';
import { before, describe, it } from 'node:test';
import { verifyCertificateChain } from '../../src/identity/certificate-chain.ts';
import {
  type CertificateAuthority,
  createCa,
  createNodeCertificate,
  generateKeyPair,
  issueCertificate,
} from '../../src/identity/certificates.ts';
import { Identity } from '../../src/identity/identity.ts';
import { UserKey, UserSigner } from '../../src/identity/user-key.ts';

const DAY = 86_400_000;
const msg = new TextEncoder().encode('SECP2PSIP INVITE body');

describe('X.509 certificate chains (strict mode)', () => {
  let root: CertificateAuthority;
  let inter: CertificateAuthority;
  let otherRoot: CertificateAuthority;
  // RSA key generation is slow: once per file.
  const rsa2048 = generateKeyPair('rsa-2048');
  const rsa1024 = generateKeyPair('rsa-1024');
  const p256 = generateKeyPair('ecdsa-p256');

  before(async () => {
    root = await createCa({ subject: 'CN=Root CA', keyType: 'ecdsa-p256', pathLength: 1 });
    inter = await createCa({ subject: 'CN=Intermediate CA', keyType: 'ed25519', parent: root, pathLength: 0 });
    otherRoot = await createCa({ subject: 'CN=Root CA', keyType: 'ecdsa-p256' }); // same name, other key
  });

  it('accepts a P-256 leaf signed by the root and an RSA-2048 leaf through an intermediate', async () => {
    const now = Date.now();
    const leaf = await issueCertificate(root, p256.publicKey, 'CN=alice', 30);
    const r = verifyCertificateChain(leaf.pem, [], [root.certPem], now);
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.equal(r.value.kind, 'ecdsa-p256');
    assert.deepEqual(r.value.path, ['CN=alice', 'CN=Root CA']);
    const leaf2 = await issueCertificate(inter, rsa2048.publicKey, 'CN=bob', 30);
    const r2 = verifyCertificateChain(leaf2.der, [inter.certDer], [root.certDer], new Date(now));
    assert.ok(r2.ok, r2.ok ? '' : r2.error);
    assert.equal(r2.value.kind, 'rsa');
    assert.deepEqual(r2.value.path, ['CN=bob', 'CN=Intermediate CA', 'CN=Root CA']);
    // Without the intermediate there is no path.
    assert.equal(verifyCertificateChain(leaf2.der, [], [root.certDer], now).ok, false);
  });

  it('refuses expired and not-yet-valid certificates, at the leaf and at the CA', async () => {
    const now = Date.now();
    const leaf = await issueCertificate(root, p256.publicKey, 'CN=carol', 10, { notBefore: new Date(now - 5 * DAY) });
    assert.ok(verifyCertificateChain(leaf.pem, [], [root.certPem], now).ok);
    const expired = verifyCertificateChain(leaf.pem, [], [root.certPem], now + 6 * DAY);
    assert.ok(!expired.ok && /expired/.test(expired.error));
    const early = verifyCertificateChain(leaf.pem, [], [root.certPem], now - 6 * DAY);
    assert.ok(!early.ok && /not valid before/.test(early.error));
    const oldCa = await createCa({ subject: 'CN=Old CA', days: 2, notBefore: new Date(now - 3 * DAY) });
    const leaf2 = await issueCertificate(oldCa, p256.publicKey, 'CN=dave', 30);
    const r = verifyCertificateChain(leaf2.pem, [], [oldCa.certPem], now);
    assert.ok(!r.ok && /Old CA expired/.test(r.error));
  });

  it('refuses a leaf from another CA, even one with the same name', async () => {
    const leaf = await issueCertificate(otherRoot, p256.publicKey, 'CN=mallory', 30);
    const r = verifyCertificateChain(leaf.pem, [], [root.certPem], Date.now());
    assert.ok(!r.ok && /no trusted issuer/.test(r.error));
    const self = await createNodeCertificate(Identity.generate().signingKeyPair);
    assert.equal(verifyCertificateChain(self.certPem, [], [root.certPem], Date.now()).ok, false);
  });

  it('refuses RSA-1024 at the leaf and in a CA', async () => {
    const leaf = await issueCertificate(root, rsa1024.publicKey, 'CN=weak', 30);
    const r = verifyCertificateChain(leaf.pem, [], [root.certPem], Date.now());
    assert.ok(!r.ok && /1024 bits/.test(r.error));
    assert.equal(UserKey.fromPublicKey(rsa1024.publicKey).ok, false);
    const weakCa = await createCa({ subject: 'CN=Weak CA', keyType: 'rsa-1024' });
    const leaf2 = await issueCertificate(weakCa, p256.publicKey, 'CN=x', 30);
    const r2 = verifyCertificateChain(leaf2.pem, [], [weakCa.certPem], Date.now());
    assert.ok(!r2.ok && /1024 bits/.test(r2.error));
  });

  it('refuses issuers that are not CAs and exceeded path lengths', async () => {
    const notCa = generateKeyPair('ed25519');
    const middle = await issueCertificate(root, notCa.publicKey, 'CN=Not a CA', 30);
    const fakeCa: CertificateAuthority = {
      certPem: middle.pem,
      certDer: middle.der,
      subject: 'CN=Not a CA',
      privateKey: notCa.privateKey,
      publicKey: notCa.publicKey,
    };
    const leaf = await issueCertificate(fakeCa, p256.publicKey, 'CN=eve', 30);
    const r = verifyCertificateChain(leaf.pem, [middle.pem], [root.certPem], Date.now());
    assert.ok(!r.ok && /not a CA/.test(r.error));
    // inter has pathLength 0: a CA below it may not issue.
    const sub = await createCa({ subject: 'CN=Sub CA', parent: inter });
    const leaf2 = await issueCertificate(sub, p256.publicKey, 'CN=frank', 30);
    const r2 = verifyCertificateChain(leaf2.pem, [inter.certPem, sub.certPem], [root.certPem], Date.now());
    assert.ok(!r2.ok && /pathLenConstraint/.test(r2.error));
  });

  it('never throws on garbage', () => {
    assert.equal(verifyCertificateChain('garbage', [], [root.certPem], Date.now()).ok, false);
    assert.equal(verifyCertificateChain(new Uint8Array([0x30, 0x03, 1, 2, 3]), [], [], Date.now()).ok, false);
    assert.equal(verifyCertificateChain(root.certPem, [], [], Date.now()).ok, false);
  });

  it('UserKey from a certificate verifies what the certificate holder signs, per context', async () => {
    for (const signer of [UserSigner.fromPrivateKey(rsa2048.privateKey), UserSigner.fromPrivateKey(p256.privateKey)]) {
      const cert = await issueCertificate(root, signer.key.publicKey, 'CN=user', 30);
      const r = UserKey.fromCertificate(cert.pem, [], [root.certPem], Date.now());
      assert.ok(r.ok);
      const key = r.value.key;
      assert.ok(key.equals(signer.key));
      const sig = signer.sign('secp2psip/invite', msg);
      assert.ok(key.verify('secp2psip/invite', msg, sig));
      assert.equal(key.verify('secp2psip/redirect', msg, sig), false);
      const t = Uint8Array.from(msg);
      t[0] ^= 1;
      assert.equal(key.verify('secp2psip/invite', t, sig), false);
      // SPKI round trip: what the bootstrap splits into pieces.
      const back = UserKey.decode(key.encode());
      assert.ok(back.ok && back.value.equals(key) && back.value.kind === key.kind);
      assert.equal(key.fingerprint().length, 64);
    }
    assert.equal(UserKey.decode(new Uint8Array([1, 2, 3])).ok, false);
    // decodeAny tells a bundle from a SubjectPublicKeyInfo.
    const id = Identity.generate();
    const fromBundle = UserKey.decodeAny(id.encodeBundle());
    assert.ok(fromBundle.ok && fromBundle.value.bundle && fromBundle.value.key.kind === 'ed25519');
    assert.ok(fromBundle.value.key.verify('c', msg, id.sign('c', msg)));
    const fromSpki = UserKey.decodeAny(UserSigner.fromPrivateKey(p256.privateKey).key.encode());
    assert.ok(fromSpki.ok && !fromSpki.value.bundle && fromSpki.value.key.kind === 'ecdsa-p256');
    assert.equal(UserKey.decodeAny(new Uint8Array([0x83, 1])).ok, false);
    assert.equal(UserKey.decodeAny(new Uint8Array(0)).ok, false);
  });
});

describe('node certificates', () => {
  it('self-signed Ed25519 certificate carries the identity key and works for a TLS 1.3 handshake', async () => {
    const id = Identity.generate();
    const { certPem, keyPem } = await createNodeCertificate(id.signingKeyPair);
    const cert = new X509Certificate(certPem);
    assert.equal(cert.subject, `CN=${id.id}`);
    assert.ok(cert.publicKey.equals(id.publicSigningKey));
    assert.ok(cert.verify(id.publicSigningKey));
    const server = createServer({ cert: certPem, key: keyPem, minVersion: 'TLSv1.3' }, (s) => s.end('hi'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const peerKey = await new Promise<string>((resolve, reject) => {
      const c = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        const pc = c.getPeerX509Certificate();
        resolve(pc ? pc.subject : '');
        c.end();
      });
      c.on('error', reject);
    });
    server.close();
    assert.equal(peerKey, `CN=${id.id}`);
  });

  it('an admission-service CA can sign node certificates that verify up to it', async () => {
    const admission = await createCa({ subject: 'CN=Bootstrap admission', keyType: 'ed25519' });
    const id = Identity.generate();
    const nodeId = 'ab'.repeat(20);
    const { certPem } = await createNodeCertificate(id.signingKeyPair, { nodeId, issuer: admission });
    const r = verifyCertificateChain(certPem, [], [admission.certPem], Date.now());
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.equal(r.value.subject, `CN=${nodeId}`);
    assert.equal(r.value.kind, 'ed25519');
  });
});
