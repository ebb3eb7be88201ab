import { constants, type KeyObject, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { OverlayError } from '../util/errors.ts';
import { rawPublicToKeyObject } from './keys.ts';

/**
 * Domain-separated signatures (DESIGN principle 4). The signed bytes are
 *
 *   "SECP2PSIP-SIG-V1" 0x00 | len(context) (1 byte) | context | message
 *
 * The prefix is fixed, the context is length-prefixed and the message is the
 * rest, so (context, message) pairs map to distinct byte strings: a signature
 * made under one context never verifies under another.
 */
const PREFIX = Buffer.from('SECP2PSIP-SIG-V1\0', 'latin1');
const CONTEXT_RE = /^[\x21-\x7e]{1,255}$/;

export function signedBytes(context: string, message: Uint8Array): Uint8Array {
  if (!CONTEXT_RE.test(context)) {
    throw new OverlayError('BAD_CONFIG', `signature context must be 1-255 printable ASCII characters: ${context}`);
  }
  const out = new Uint8Array(PREFIX.length + 1 + context.length + message.length);
  out.set(PREFIX, 0);
  out[PREFIX.length] = context.length;
  out.set(Buffer.from(context, 'latin1'), PREFIX.length + 1);
  out.set(message, PREFIX.length + 1 + context.length);
  return out;
}

/** Supported signing key kinds: Ed25519 (nodes, users) and, for certificate-holding users, RSA and ECDSA P-256. */
export type SignatureKind = 'ed25519' | 'rsa' | 'ecdsa-p256';

export function signatureKind(key: KeyObject): SignatureKind | undefined {
  const t = key.asymmetricKeyType;
  if (t === 'ed25519') return 'ed25519';
  if (t === 'rsa') return 'rsa';
  if (t === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256';
  return undefined;
}

/** Minimum RSA modulus accepted anywhere (the seed's 256-bit RSA is far below it). */
export const MIN_RSA_BITS = 2048;

/**
 * Algorithms per kind: Ed25519 (RFC 8032, pure); ECDSA P-256 with SHA-256,
 * fixed-size r||s signature; RSASSA-PSS with SHA-256 and a 32-byte salt
 * (RFC 8017 section 8.1). SHA-256 is the seed's hash for signed data.
 */
function params(kind: SignatureKind, key: KeyObject): { alg: string | null; opts: Record<string, unknown> } {
  switch (kind) {
    case 'ed25519':
      return { alg: null, opts: { key } };
    case 'ecdsa-p256':
      return { alg: 'sha256', opts: { key, dsaEncoding: 'ieee-p1363' } };
    case 'rsa':
      return {
        alg: 'sha256',
        opts: { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
      };
  }
}

/** Sign with any supported private key. Throws only on programming errors (bad context, unsupported key). */
export function signWithKey(privateKey: KeyObject, context: string, message: Uint8Array): Uint8Array {
  const kind = signatureKind(privateKey);
  if (!kind) throw new OverlayError('IDENTITY_BAD_KEY', `cannot sign with ${privateKey.asymmetricKeyType} key`);
  const { alg, opts } = params(kind, privateKey);
  return new Uint8Array(nodeSign(alg, signedBytes(context, message), opts as never));
}

/** Verify with any supported public key. Never throws: anything malformed is simply false. */
export function verifyWithKey(publicKey: KeyObject, context: string, message: Uint8Array, sig: Uint8Array): boolean {
  try {
    const kind = signatureKind(publicKey);
    if (!kind || !(sig instanceof Uint8Array) || !(message instanceof Uint8Array)) return false;
    if (kind === 'ed25519' && sig.length !== 64) return false;
    if (kind === 'ecdsa-p256' && sig.length !== 64) return false;
    if (kind === 'rsa' && (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return false;
    const { alg, opts } = params(kind, publicKey);
    return nodeVerify(alg, signedBytes(context, message), opts as never, sig);
  } catch {
    return false;
  }
}

/** Ed25519 verification from a 32-byte raw public key. */
export function verifyEd25519(rawKey: Uint8Array, context: string, message: Uint8Array, sig: Uint8Array): boolean {
  const key = rawPublicToKeyObject('ed25519', rawKey);
  return key ? verifyWithKey(key, context, message, sig) : false;
}
