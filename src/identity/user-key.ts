import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { fail, OverlayError, ok, type Result } from '../util/errors.ts';
import { decodeBundle, type PublicBundle } from './bundle.ts';
import { generateKeyPair, type KeyType } from './certificates.ts';
import { type VerifiedCertificate, verifyCertificateChain } from './certificate-chain.ts';
import { sha256Hex } from './fingerprint.ts';
import type { Identity } from './identity.ts';
import { isEd25519Point, rawPublicToKeyObject } from './keys.ts';
import {
  MIN_RSA_BITS,
  type SignatureKind,
  signatureKind,
  signWithKey,
  signWithKeyAsync,
  verifyWithKey,
} from './signature.ts';

/** Largest SubjectPublicKeyInfo accepted (RSA-8192 is about 1.1 KB). */
const MAX_SPKI_BYTES = 1200;
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * A user's public key, whichever kind it is: Ed25519 (an Identity) or, in
 * SecP2PSIP strict mode, RSA (>= 2048 bits) or ECDSA P-256 taken from an
 * X.509 certificate. Its canonical bytes (SubjectPublicKeyInfo DER) are what
 * the bootstrap splits into PubKeyPieces.
 */
export class UserKey {
  readonly kind: SignatureKind;
  readonly publicKey: KeyObject;
  private spki?: Uint8Array;

  private constructor(publicKey: KeyObject, kind: SignatureKind) {
    this.publicKey = publicKey;
    this.kind = kind;
  }

  static fromPublicKey(key: KeyObject): Result<UserKey> {
    if (key?.type !== 'public') return fail('not a public key');
    const kind = signatureKind(key);
    if (!kind) return fail(`unsupported key type ${key.asymmetricKeyType}`);
    if (kind === 'rsa') {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) return fail(`RSA key of ${bits} bits (minimum ${MIN_RSA_BITS})`);
    }
    return ok(new UserKey(key, kind));
  }

  /**
   * `checkPoint` false skips the curve-point check of an Ed25519 key (a BigInt exponentiation, about 0.3 to
   * 1 ms): only for keys that were checked where they entered the system, such as one a bootstrap checked at
   * registration and signed into the ring. Skipping it cannot make a bad key verify anything: OpenSSL
   * decodes the point on every verification and refuses one that is not on the curve (RFC 8032 section
   * 5.1.7, step 1), so the check only makes such a key fail early, with a clear error.
   */
  static fromEd25519(raw: Uint8Array, checkPoint = true): Result<UserKey> {
    const key =
      raw instanceof Uint8Array && raw.length === 32 && (!checkPoint || isEd25519Point(raw))
        ? rawPublicToKeyObject('ed25519', raw)
        : undefined;
    return key ? UserKey.fromPublicKey(key) : fail('bad Ed25519 key');
  }

  static fromBundle(bundle: PublicBundle): Result<UserKey> {
    return UserKey.fromEd25519(bundle.sig);
  }

  /** Decode SubjectPublicKeyInfo DER from untrusted bytes. Never throws. `checkPoint`: see fromEd25519. */
  static decode(spki: Uint8Array, checkPoint = true): Result<UserKey> {
    if (!(spki instanceof Uint8Array) || spki.length === 0 || spki.length > MAX_SPKI_BYTES) return fail('bad key size');
    // Ed25519 SPKI is a fixed 12-byte prefix and the raw key (RFC 8410 section 4): skip OpenSSL's DER decoder.
    if (spki.length === 44 && Buffer.from(spki.buffer, spki.byteOffset, 12).equals(ED25519_SPKI_PREFIX))
      return UserKey.fromEd25519(spki.subarray(12), checkPoint);
    try {
      return UserKey.fromPublicKey(createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }));
    } catch (e) {
      return fail(`unreadable public key: ${(e as Error).message}`);
    }
  }

  /**
   * Decode the bytes a user's key was split from: a public bundle (CBOR array,
   * first byte 0x83; Ed25519 users) or a SubjectPublicKeyInfo (DER SEQUENCE,
   * first byte 0x30; certificate users). The bundle, when there is one, also
   * gives the X25519 key to seal to. Never throws.
   */
  static decodeAny(bytes: Uint8Array): Result<{ key: UserKey; bundle?: PublicBundle }> {
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) return fail('empty key');
    if (bytes[0] === 0x83) {
      const b = decodeBundle(bytes);
      if (!b.ok) return b;
      const k = UserKey.fromBundle(b.value);
      return k.ok ? ok({ key: k.value, bundle: b.value }) : k;
    }
    const k = UserKey.decode(bytes);
    return k.ok ? ok({ key: k.value }) : k;
  }

  /** The key of a certificate that verifies up to one of the trust anchors (see verifyCertificateChain). */
  static fromCertificate(
    leaf: string | Uint8Array,
    chain: readonly (string | Uint8Array)[],
    caBundle: readonly (string | Uint8Array)[],
    now: Date | number,
  ): Result<{ key: UserKey; certificate: VerifiedCertificate }> {
    const v = verifyCertificateChain(leaf, chain, caBundle, now);
    if (!v.ok) return v;
    const k = UserKey.fromPublicKey(v.value.publicKey);
    return k.ok ? ok({ key: k.value, certificate: v.value }) : k;
  }

  /** SubjectPublicKeyInfo DER: the canonical bytes of this key. */
  encode(): Uint8Array {
    this.spki ??= new Uint8Array(this.publicKey.export({ format: 'der', type: 'spki' }));
    return this.spki;
  }

  /** SHA-256 of the SubjectPublicKeyInfo, 64 hex. */
  fingerprint(): string {
    return sha256Hex(this.encode());
  }

  verify(context: string, message: Uint8Array, sig: Uint8Array): boolean {
    return verifyWithKey(this.publicKey, context, message, sig);
  }

  equals(other: UserKey): boolean {
    return Buffer.compare(this.encode(), other.encode()) === 0;
  }
}

/** The private half: signs SecP2PSIP messages with the user's key, whichever kind. */
export class UserSigner {
  readonly key: UserKey;
  private readonly privateKey: KeyObject;

  private constructor(privateKey: KeyObject) {
    const k = UserKey.fromPublicKey(createPublicKey(privateKey));
    if (!k.ok) throw new OverlayError('IDENTITY_BAD_KEY', k.error);
    this.privateKey = privateKey;
    this.key = k.value;
  }

  static fromPrivateKey(privateKey: KeyObject): UserSigner {
    return new UserSigner(privateKey);
  }

  static fromPem(pem: string): UserSigner {
    return new UserSigner(createPrivateKey(pem));
  }

  static fromIdentity(identity: Identity): UserSigner {
    return new UserSigner(identity.signingKey);
  }

  /** Fresh key (RSA generation is slow: tens to hundreds of ms). */
  static generate(type: Exclude<KeyType, 'rsa-1024'>): UserSigner {
    return new UserSigner(generateKeyPair(type).privateKey);
  }

  sign(context: string, message: Uint8Array): Uint8Array {
    return signWithKey(this.privateKey, context, message);
  }

  /**
   * `sign` on Node's worker pool, leaving the event loop free meanwhile (identity/signature.ts
   * signWithKeyAsync): for Ed25519 the very bytes `sign` returns. The key stays inside this object.
   */
  signAsync(context: string, message: Uint8Array): Promise<Uint8Array> {
    return signWithKeyAsync(this.privateKey, context, message);
  }

  toPem(): string {
    return this.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  }
}
