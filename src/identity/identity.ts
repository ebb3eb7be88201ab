import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { OverlayError } from '../util/errors.ts';
import type { PublicBundle } from './bundle.ts';
import { encodeBundle } from './bundle.ts';
import { canonicalEncode } from './cbor.ts';
import { nodeIdFromKey } from './fingerprint.ts';
import { assertPrivateFile, writeSecretFileAtomic } from './key-file.ts';
import { publicKeyToRaw } from './keys.ts';
import { signWithKey } from './signature.ts';

/** PKCS#8 headers of a 32-byte Ed25519 / X25519 private key (RFC 8410 section 7). */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * A private key from its 32-byte seed. The JWK import (RFC 8037 section 2) is several times faster than
 * OpenSSL 3's PKCS#8 decoder, but wants the public "x" too, which only the key can compute: node builds
 * the key from "d" alone, and every public key this module hands out is derived from the private key
 * (createPublicKey), never read from that "x". A node that refuses the placeholder gets the DER form.
 */
function privateFromSeed(crv: 'Ed25519' | 'X25519', seed: Uint8Array): KeyObject {
  const d = Buffer.from(seed).toString('base64url');
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv, d, x: d }, format: 'jwk' });
  } catch {
    const prefix = crv === 'Ed25519' ? PKCS8_ED25519 : PKCS8_X25519;
    return createPrivateKey({ key: Buffer.concat([prefix, seed]), format: 'der', type: 'pkcs8' });
  }
}

/** File name used when Identity.load/save is given a directory. */
export const IDENTITY_FILE = 'identity.pem';

/**
 * A node's or user's long-term identity: an Ed25519 signing key plus an
 * X25519 key others seal to. Stored as one file holding two PKCS#8 PEM blocks
 * (Ed25519 first), readable by openssl.
 */
export class Identity {
  readonly signingKey: KeyObject;
  readonly kemKey: KeyObject;
  readonly bundle: PublicBundle;
  private encodedBundle?: Uint8Array;

  private constructor(signingKey: KeyObject, kemKey: KeyObject) {
    if (signingKey.asymmetricKeyType !== 'ed25519' || kemKey.asymmetricKeyType !== 'x25519') {
      throw new OverlayError('IDENTITY_BAD_KEY', 'identity needs an Ed25519 and an X25519 private key');
    }
    this.signingKey = signingKey;
    this.kemKey = kemKey;
    this.bundle = Object.freeze({
      sig: publicKeyToRaw(createPublicKey(signingKey)),
      kem: publicKeyToRaw(createPublicKey(kemKey)),
    });
  }

  static generate(): Identity {
    return new Identity(generateKeyPairSync('ed25519').privateKey, generateKeyPairSync('x25519').privateKey);
  }

  /**
   * The identity whose private keys are these two 32-byte seeds: the Ed25519 secret key of RFC 8032
   * section 5.1.5 and the X25519 scalar of RFC 7748 section 5 (clamped by the curve code). Whoever
   * knows the seeds has the identity; they must be secret and uniformly random (see user-keys.ts).
   */
  static fromSeeds(signSeed: Uint8Array, kemSeed: Uint8Array): Identity {
    if (signSeed.length !== 32 || kemSeed.length !== 32)
      throw new OverlayError('IDENTITY_BAD_KEY', 'identity seeds are 32 bytes each');
    return new Identity(privateFromSeed('Ed25519', signSeed), privateFromSeed('X25519', kemSeed));
  }

  static fromKeys(signingKey: KeyObject, kemKey: KeyObject): Identity {
    return new Identity(signingKey, kemKey);
  }

  /** Parse the PEM form written by toPem(). */
  static fromPem(pem: string): Identity {
    const blocks = pem.match(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/g);
    if (blocks?.length !== 2) {
      throw new OverlayError('IDENTITY_BAD_KEY', 'identity file must hold two PRIVATE KEY blocks');
    }
    try {
      return new Identity(createPrivateKey(blocks[0]), createPrivateKey(blocks[1]));
    } catch (e) {
      if (e instanceof OverlayError) throw e;
      throw new OverlayError('IDENTITY_BAD_KEY', `unreadable identity key: ${(e as Error).message}`);
    }
  }

  /** Load from a file, or from `<dir>/identity.pem` when given a directory. The file must be mode 0600. */
  static load(path: string): Identity {
    const file = identityPath(path);
    if (!existsSync(file)) throw new OverlayError('IDENTITY_BAD_KEY', `no identity at ${file}`);
    assertPrivateFile(file);
    return Identity.fromPem(readFileSync(file, 'utf8'));
  }

  /** Load the identity at path, or create and save a new one: what a daemon does at start-up. */
  static loadOrCreate(path: string): Identity {
    const file = identityPath(path);
    if (existsSync(file)) return Identity.load(file);
    const id = Identity.generate();
    // Another process may create it at the same moment: then its key is the one on disk, and ours is dropped.
    return writeSecretFileAtomic(file, id.toPem(), { exclusive: true }) ? id : Identity.load(file);
  }

  /** Write atomically with mode 0600 (directory created 0700); returns the file written. */
  save(path: string): string {
    const file = identityPath(path);
    writeSecretFileAtomic(file, this.toPem());
    return file;
  }

  toPem(): string {
    return (
      (this.signingKey.export({ format: 'pem', type: 'pkcs8' }) as string) +
      (this.kemKey.export({ format: 'pem', type: 'pkcs8' }) as string)
    );
  }

  /** The Ed25519 private key alone as PKCS#8 PEM, e.g. for a TLS secure context. */
  signingKeyPem(): string {
    return this.signingKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  }

  /** The Ed25519 pair, as a node's TLS certificate and links take it. */
  get signingKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
    return { privateKey: this.signingKey, publicKey: this.publicSigningKey };
  }

  get publicSigningKey(): KeyObject {
    return createPublicKey(this.signingKey);
  }

  encodeBundle(): Uint8Array {
    this.encodedBundle ??= encodeBundle(this.bundle);
    return this.encodedBundle;
  }

  /** SHA-1 of the Ed25519 public key, 40 hex: the WhanauSIP identity and the default ring id. */
  get id(): string {
    return nodeIdFromKey(this.bundle);
  }

  /** Domain-separated Ed25519 signature over (context, message); see signature.ts. */
  sign(context: string, message: Uint8Array): Uint8Array {
    return signWithKey(this.signingKey, context, message);
  }

  /** Sign a structured value: returns its canonical CBOR (what was signed) and the signature. */
  signObject(context: string, value: unknown): { body: Uint8Array; sig: Uint8Array } {
    const body = canonicalEncode(value);
    return { body, sig: this.sign(context, body) };
  }
}

function identityPath(path: string): string {
  try {
    if (statSync(path).isDirectory()) return join(path, IDENTITY_FILE);
  } catch {
    // Does not exist yet: a name ending in .pem is a file, anything else a directory.
  }
  return path.endsWith('.pem') ? path : join(path, IDENTITY_FILE);
}
