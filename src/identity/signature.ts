import { constants, createHash, type KeyObject, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
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
  // Not remembered as verified: a signature made here is checked by its reader like any other, so that nodes
  // sharing a process (a benchmark's overlay) do the work separate hosts would do.
  return new Uint8Array(nodeSign(alg, signedBytes(context, message), opts as never));
}

/**
 * signWithKey on Node's worker pool (crypto.sign with a callback): the same algorithm, options and signed
 * bytes, so the same signature where the scheme is deterministic (Ed25519, RFC 8032 section 5.1.6) and an
 * equally valid one where it is randomised (RSA-PSS salt, ECDSA nonce). Rejects only on what signWithKey
 * throws on (a bad context, an unsupported key), or if OpenSSL fails.
 */
export function signWithKeyAsync(privateKey: KeyObject, context: string, message: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const kind = signatureKind(privateKey);
    if (!kind) throw new OverlayError('IDENTITY_BAD_KEY', `cannot sign with ${privateKey.asymmetricKeyType} key`);
    const { alg, opts } = params(kind, privateKey);
    nodeSign(alg, signedBytes(context, message), opts as never, (err, sig) =>
      err ? reject(err) : resolve(new Uint8Array(sig)),
    );
  });
}

/** A verification whose inputs passed the checks made before any curve work (see verificationOf). */
export interface Verification {
  kind: SignatureKind;
  alg: string | null;
  opts: Record<string, unknown>;
  /** The bytes the signature covers (signedBytes). */
  bytes: Uint8Array;
  sig: Uint8Array;
}

/**
 * What a verification checks before any curve work, and what it then verifies: undefined for anything
 * malformed (unsupported key, signature of the wrong size, RSA below MIN_RSA_BITS, a bad context).
 */
export function verificationOf(
  publicKey: KeyObject,
  context: string,
  message: Uint8Array,
  sig: Uint8Array,
): Verification | undefined {
  try {
    const kind = signatureKind(publicKey);
    if (!kind || !(sig instanceof Uint8Array) || !(message instanceof Uint8Array)) return undefined;
    if (kind === 'ed25519' && sig.length !== 64) return undefined;
    if (kind === 'ecdsa-p256' && sig.length !== 64) return undefined;
    if (kind === 'rsa' && (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return undefined;
    return { kind, ...params(kind, publicKey), bytes: signedBytes(context, message), sig };
  } catch {
    return undefined;
  }
}

/** Verify with any supported public key. Never throws: anything malformed is simply false. */
export function verifyWithKey(publicKey: KeyObject, context: string, message: Uint8Array, sig: Uint8Array): boolean {
  try {
    const v = verificationOf(publicKey, context, message, sig);
    if (!v) return false;
    if (v.kind !== 'ed25519') return nodeVerify(v.alg, v.bytes, v.opts as never, sig);
    const seen = digest(keyId(publicKey), v.bytes, sig);
    if (verified.has(seen)) return true;
    const good = nodeVerify(v.alg, v.bytes, v.opts as never, sig);
    if (good) verified.add(seen);
    return good;
  } catch {
    return false;
  }
}

/**
 * A verification on Node's worker pool (crypto.verify with a callback): the bytes, key and options
 * verifyWithKey would use, so the same verdict. Never rejects.
 */
export function verifyOffThread(v: Verification): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      nodeVerify(v.alg, v.bytes, v.opts as never, v.sig, (err, good) => resolve(err === null && good === true));
    } catch {
      resolve(false);
    }
  });
}

/** Ed25519 verification from a 32-byte raw public key. */
export function verifyEd25519(rawKey: Uint8Array, context: string, message: Uint8Array, sig: Uint8Array): boolean {
  const key = rawPublicToKeyObject('ed25519', rawKey);
  return key ? verifyWithKey(key, context, message, sig) : false;
}

/**
 * Ed25519 signatures that verified in this process, by the exact (key, signed bytes,
 * signature). One record set signed by a bootstrap is checked by every node that stores a piece of it,
 * a user certificate by every holder of the user's presence record; where several nodes share a process
 * (an in-process overlay, a daemon hosting several roles) each of them would verify the very same bytes
 * again, at about a hundred microseconds apiece. Ed25519 verification is a deterministic function of
 * these three inputs, so a hit here is exactly a verification that succeeded before; failures are not
 * remembered (a forger gains nothing by repeating). The entries are SHA-256 digests of the three inputs,
 * each length-prefixed, so two different inputs never share one (short of a SHA-256 collision).
 */
class VerifiedSignatures {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}

  /** `d`: the digest of the three inputs (see `digest`). */
  has(d: string): boolean {
    return this.seen.has(d);
  }

  add(d: string): void {
    if (this.seen.has(d)) return;
    // Oldest first out: the set stays bounded whatever a peer sends.
    if (this.seen.size >= this.max) this.seen.delete(this.seen.values().next().value as string);
    this.seen.add(d);
  }
}

const verified = new VerifiedSignatures(16_384);

function digest(key: string, bytes: Uint8Array, sig: Uint8Array): string {
  const len = Buffer.alloc(8);
  len.writeUInt32BE(key.length, 0);
  len.writeUInt32BE(bytes.length, 4);
  return createHash('sha256').update(len).update(key, 'latin1').update(bytes).update(sig).digest('base64');
}

/** A public key's raw bytes (RFC 8037 "x") as a string, once per KeyObject. */
const keyIds = new WeakMap<KeyObject, string>();
function keyId(publicKey: KeyObject): string {
  let id = keyIds.get(publicKey);
  if (id === undefined) {
    id = publicKey.export({ format: 'jwk' }).x as string;
    keyIds.set(publicKey, id);
  }
  return id;
}
