/**
 * Reading node certificates on RPC links. A node's TLS certificate is an
 * Ed25519 X.509 certificate whose subject public key IS the node key (made by
 * identity/certificates.ts `createNodeCertificate`, usually self-signed), so
 * the TLS 1.3 handshake (CertificateVerify, RFC 8446 section 4.4.3) proves
 * possession of the node key and the peer's identity is read straight from
 * the certificate. Trust comes from pinning the key, not from a CA.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { fail, ok, type Result } from '../util/errors.ts';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 section 4); the raw key follows. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Raw 32-byte Ed25519 public key of a KeyObject. */
export function rawEd25519PublicKey(key: KeyObject): Result<Uint8Array> {
  if (key.asymmetricKeyType !== 'ed25519') return fail(`not an Ed25519 key: ${key.asymmetricKeyType}`);
  const der = key.export({ format: 'der', type: 'spki' });
  if (der.length !== 44 || !der.subarray(0, 12).equals(ED25519_SPKI_PREFIX)) return fail('unexpected SPKI encoding');
  return ok(new Uint8Array(der.subarray(12)));
}

/** What a certificate says, read once: its node key, validity period, and whether it signed itself. */
interface CertificateFacts {
  key: Uint8Array;
  from: number;
  to: number;
  selfSigned: boolean;
}

/**
 * Certificates already read, by SHA-256 fingerprint of their DER (collision
 * resistant, so the same fingerprint is the same certificate). Reading the key
 * out and checking the self-signature cost about 0.5 ms per handshake side,
 * more than our share of the TLS handshake itself; a node meets the same
 * peers' certificates again and again. Bounded: cleared when full.
 */
const readCertificates = new Map<string, CertificateFacts>();
const MAX_READ_CERTIFICATES = 20_000;

function certificateFacts(cert: X509Certificate): Result<CertificateFacts> {
  const fp = cert.fingerprint256;
  const known = readCertificates.get(fp);
  if (known) return ok(known);
  const publicKey = cert.publicKey;
  const key = rawEd25519PublicKey(publicKey);
  if (!key.ok) return key;
  const facts: CertificateFacts = {
    key: key.value,
    from: Date.parse(cert.validFrom),
    to: Date.parse(cert.validTo),
    selfSigned: cert.verify(publicKey),
  };
  if (readCertificates.size >= MAX_READ_CERTIFICATES) readCertificates.clear();
  readCertificates.set(fp, facts);
  return ok(facts);
}

/**
 * Check a peer's certificate and return the node key it carries. The
 * certificate must be self-consistent: signed by its own key, or by one of the
 * configured issuers, and inside its validity period.
 */
export function verifyNodeCertificate(
  cert: X509Certificate | undefined,
  issuers: readonly KeyObject[],
  nowMs: number,
): Result<Uint8Array> {
  if (!cert) return fail('no certificate');
  try {
    const facts = certificateFacts(cert);
    if (!facts.ok) return facts;
    const { key, from, to } = facts.value;
    if (!(from <= nowMs && nowMs <= to)) return fail('certificate outside its validity period');
    if (facts.value.selfSigned) return ok(key);
    for (const issuer of issuers) if (cert.verify(issuer)) return ok(key);
    return fail('certificate signature does not verify');
  } catch (e) {
    return fail(`certificate unreadable: ${(e as Error).message}`);
  }
}
