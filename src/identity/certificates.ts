import 'reflect-metadata';
import { createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import { OverlayError } from '../util/errors.ts';
import { nodeIdFromKey } from './fingerprint.ts';
import { publicKeyToRaw } from './keys.ts';
import { signatureKind } from './signature.ts';

/**
 * Creating X.509 certificates (RFC 5280) with @peculiar/x509 over node's
 * WebCrypto: a test or demo certification authority, user certificates it
 * issues (SecP2PSIP strict mode, seed 000 section IV.1), and node
 * certificates carrying a node's Ed25519 key for TLS links. Verification is in
 * certificate-chain.ts.
 */
const provider = webcrypto;
x509.cryptoProvider.set(provider as never);

type WebAlgorithm = webcrypto.Algorithm & Record<string, unknown>;

export type KeyType = 'ed25519' | 'ecdsa-p256' | 'rsa-2048' | 'rsa-3072' | 'rsa-1024';

export interface CertificateAuthority {
  certPem: string;
  certDer: Uint8Array;
  subject: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface IssuedCertificate {
  pem: string;
  der: Uint8Array;
}

export interface CertificateOptions {
  /** Start of validity; default one hour ago (clock skew). */
  notBefore?: Date;
  /** Issue a CA certificate (basicConstraints cA, keyCertSign). */
  isCa?: boolean;
  /** basicConstraints pathLenConstraint for a CA certificate. */
  pathLength?: number;
  /** A TLS server certificate (extended key usage serverAuth) for these host names and IP addresses. */
  serverNames?: string[];
}

const DAY_MS = 86_400_000;

/** Generate a key pair of the given type (RSA key generation takes tens of milliseconds: keep it out of loops). */
export function generateKeyPair(type: KeyType): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (type) {
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    case 'ecdsa-p256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    default:
      return generateKeyPairSync('rsa', { modulusLength: Number(type.slice(4)) });
  }
}

/** WebCrypto algorithm for importing a key of this kind and for the signatures it makes on certificates. */
function webAlgorithm(key: KeyObject): { import: WebAlgorithm; sign: WebAlgorithm } {
  const t = key.asymmetricKeyType;
  if (t === 'ed25519') return { import: { name: 'Ed25519' }, sign: { name: 'Ed25519' } };
  if (t === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256';
    const hash = curve === 'P-384' ? 'SHA-384' : 'SHA-256';
    return { import: { name: 'ECDSA', namedCurve: curve }, sign: { name: 'ECDSA', hash } };
  }
  if (t === 'rsa') {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { import: alg, sign: alg };
  }
  throw new OverlayError('IDENTITY_BAD_KEY', `unsupported key type for certificates: ${t}`);
}

async function toCryptoKey(key: KeyObject): Promise<webcrypto.CryptoKey> {
  const alg = webAlgorithm(key).import;
  if (key.type === 'private') {
    return provider.subtle.importKey('pkcs8', key.export({ format: 'der', type: 'pkcs8' }), alg, false, ['sign']);
  }
  return provider.subtle.importKey('spki', key.export({ format: 'der', type: 'spki' }), alg, true, ['verify']);
}

function serialNumber(): string {
  // Positive 64-bit serial (RFC 5280 section 4.1.2.2: positive, at most 20 octets).
  const b = randomBytes(8);
  b[0] &= 0x7f;
  b[0] |= 0x01;
  return b.toString('hex');
}

async function build(
  subject: string,
  subjectKey: KeyObject,
  issuer: { subject: string; privateKey: KeyObject; certDer?: Uint8Array },
  days: number,
  opts: CertificateOptions,
): Promise<IssuedCertificate> {
  const publicKey = await toCryptoKey(subjectKey.type === 'private' ? createPublicKey(subjectKey) : subjectKey);
  const notBefore = opts.notBefore ?? new Date(Date.now() - 3_600_000);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(opts.isCa === true, opts.isCa ? opts.pathLength : undefined, true),
    new x509.KeyUsagesExtension(
      opts.isCa ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature,
      true,
    ),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, provider),
  ];
  if (opts.serverNames) {
    extensions.push(
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(
        opts.serverNames.map((n) => ({ type: isIP(n) ? 'ip' : 'dns', value: n }) as x509.JsonGeneralName),
        false,
      ),
    );
  }
  if (issuer.certDer) {
    extensions.push(
      await x509.AuthorityKeyIdentifierExtension.create(new x509.X509Certificate(issuer.certDer), false, provider),
    );
  }
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject,
      issuer: issuer.subject,
      notBefore,
      notAfter: new Date(notBefore.getTime() + days * DAY_MS),
      signingAlgorithm: webAlgorithm(issuer.privateKey).sign,
      publicKey,
      signingKey: await toCryptoKey(issuer.privateKey),
      extensions,
    },
    provider,
  );
  return { pem: cert.toString('pem'), der: new Uint8Array(cert.rawData) };
}

/**
 * A certification authority: self-signed root, or an intermediate when
 * `parent` is given. Subject is an X.500 name such as "CN=Example Root CA".
 */
export async function createCa(
  opts: {
    subject?: string;
    keyType?: KeyType;
    days?: number;
    notBefore?: Date;
    pathLength?: number;
    parent?: CertificateAuthority;
  } = {},
): Promise<CertificateAuthority> {
  const subject = opts.subject ?? 'CN=secp2psip test CA';
  const keys = generateKeyPair(opts.keyType ?? 'ecdsa-p256');
  const issuer = opts.parent ?? { subject, privateKey: keys.privateKey };
  const cert = await build(subject, keys.publicKey, issuer, opts.days ?? 3650, {
    isCa: true,
    pathLength: opts.pathLength,
    notBefore: opts.notBefore,
  });
  return { certPem: cert.pem, certDer: cert.der, subject, privateKey: keys.privateKey, publicKey: keys.publicKey };
}

/** Issue a certificate binding `publicKey` to `subject`, valid for `days`. */
export async function issueCertificate(
  ca: CertificateAuthority,
  publicKey: KeyObject,
  subject: string,
  days: number,
  opts: CertificateOptions = {},
): Promise<IssuedCertificate> {
  if (!signatureKind(publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey)) {
    throw new OverlayError('IDENTITY_BAD_KEY', `cannot certify a ${publicKey.asymmetricKeyType} key`);
  }
  return build(subject, publicKey, ca, days, opts);
}

/** A node's TLS certificate and private key, as PEMs ready for tls.createSecureContext. */
export interface NodeCertificate {
  certPem: string;
  keyPem: string;
}

/**
 * A certificate carrying a node's Ed25519 key, for TLS links (rpc/tls-cert.ts
 * says how peers read it): self-signed, so the TLS 1.3 handshake proves
 * possession of the node key and trust comes from pinning that key, or signed
 * by an admission service's CA (`issuer`). The subject CN is the node id
 * (default: SHA-1 of the raw key, the default ring id).
 */
export async function createNodeCertificate(
  keyPair: { privateKey: KeyObject; publicKey: KeyObject },
  opts: { nodeId?: string; issuer?: CertificateAuthority; days?: number } = {},
): Promise<NodeCertificate> {
  if (keyPair.publicKey.asymmetricKeyType !== 'ed25519')
    throw new OverlayError('IDENTITY_BAD_KEY', `a node key is Ed25519, not ${keyPair.publicKey.asymmetricKeyType}`);
  const subject = `CN=${opts.nodeId ?? nodeIdFromKey(publicKeyToRaw(keyPair.publicKey))}`;
  const signer = opts.issuer ?? { subject, privateKey: keyPair.privateKey };
  const cert = await build(subject, keyPair.publicKey, signer, opts.days ?? 3650, {});
  return { certPem: cert.pem, keyPem: keyPair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string };
}

/**
 * A self-signed TLS server certificate (ECDSA P-256, which every SIP phone and browser accepts) for `names`
 * (host names and IP addresses, as subjectAltName), with its private key as PEM. Trust comes from pinning its
 * SHA-256 fingerprint, not from a CA.
 */
export async function createServerCertificate(
  names: string[],
  opts: { days?: number; subject?: string } = {},
): Promise<NodeCertificate> {
  const keys = generateKeyPair('ecdsa-p256');
  const subject = opts.subject ?? `CN=${names[0] ?? 'secp2psip'}`;
  const cert = await build(subject, keys.publicKey, { subject, privateKey: keys.privateKey }, opts.days ?? 825, {
    serverNames: names,
  });
  // A final newline, so the PEMs can be concatenated into one file (as baresip's sip_certificate wants).
  return {
    certPem: cert.pem.endsWith('\n') ? cert.pem : `${cert.pem}\n`,
    keyPem: keys.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
  };
}
