import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { fail, ok, type Result } from '../util/errors.ts';
import type { PublicBundle } from './bundle.ts';
import type { Identity } from './identity.ts';
import { publicKeyToRaw, rawPublicToKeyObject } from './keys.ts';

/**
 * HPKE base mode, single shot (RFC 9180 sections 4, 5.1, 6.1) with
 * DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and AES-128-GCM, done directly with
 * node:crypto: @hpke/core produces the same bytes (the tests check both
 * directions) but costs several milliseconds per seal+open through WebCrypto,
 * this takes well under one.
 *
 * Sealed form: enc (32 bytes, the ephemeral X25519 key) || ciphertext || tag.
 */
const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const AEAD_ID = 0x0001;
const NK = 16;
const NN = 12;
const TAG = 16;
export const ENC_LEN = 32;

/** Default HPKE info: binds every sealed message to this product and format version. */
export const SEAL_INFO = new TextEncoder().encode('secp2psip seal v1');

const HPKE_V1 = Buffer.from('HPKE-v1');
const KEM_SUITE = Buffer.from([0x4b, 0x45, 0x4d, KEM_ID >> 8, KEM_ID & 0xff]); // "KEM" || kem_id
const HPKE_SUITE = Buffer.from([
  0x48,
  0x50,
  0x4b,
  0x45,
  KEM_ID >> 8,
  KEM_ID & 0xff,
  KDF_ID >> 8,
  KDF_ID & 0xff,
  AEAD_ID >> 8,
  AEAD_ID & 0xff,
]); // "HPKE" || kem_id || kdf_id || aead_id
const EMPTY = new Uint8Array(0);

function extract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac('sha256', salt.length ? salt : Buffer.alloc(32))
    .update(ikm)
    .digest();
}

function expand(prk: Uint8Array, info: Uint8Array, len: number): Buffer {
  const out: Buffer[] = [];
  let t: Buffer = Buffer.alloc(0);
  for (let i = 1; out.length * 32 < len; i++) {
    t = createHmac('sha256', prk)
      .update(t)
      .update(info)
      .update(Buffer.from([i]))
      .digest();
    out.push(t);
  }
  return Buffer.concat(out).subarray(0, len);
}

/** RFC 9180 section 4: LabeledExtract / LabeledExpand. */
function labeledExtract(suite: Buffer, salt: Uint8Array, label: string, ikm: Uint8Array): Buffer {
  return extract(salt, Buffer.concat([HPKE_V1, suite, Buffer.from(label), ikm]));
}

function labeledExpand(suite: Buffer, prk: Uint8Array, label: string, info: Uint8Array, len: number): Buffer {
  const l = Buffer.from([len >> 8, len & 0xff]);
  return expand(prk, Buffer.concat([l, HPKE_V1, suite, Buffer.from(label), info]), len);
}

/** RFC 9180 section 4.1: DH then ExtractAndExpand over kem_context = enc || pkRm. */
function kemSharedSecret(dh: Buffer, enc: Uint8Array, pkRm: Uint8Array): Buffer {
  const prk = labeledExtract(KEM_SUITE, EMPTY, 'eae_prk', dh);
  return labeledExpand(KEM_SUITE, prk, 'shared_secret', Buffer.concat([enc, pkRm]), 32);
}

/** RFC 9180 section 5.1, mode_base (no PSK): key and base_nonce. */
function keySchedule(sharedSecret: Buffer, info: Uint8Array): { key: Buffer; nonce: Buffer } {
  const context = scheduleContext(info);
  const secret = labeledExtract(HPKE_SUITE, sharedSecret, 'secret', EMPTY);
  return {
    key: labeledExpand(HPKE_SUITE, secret, 'key', context, NK),
    nonce: labeledExpand(HPKE_SUITE, secret, 'base_nonce', context, NN),
  };
}

/** key_schedule_context = mode || psk_id_hash || info_hash depends only on info: computed once per info. */
const contexts = new Map<string, Buffer>();
function scheduleContext(info: Uint8Array): Buffer {
  const id = Buffer.from(info).toString('base64');
  let ctx = contexts.get(id);
  if (!ctx) {
    const pskIdHash = labeledExtract(HPKE_SUITE, EMPTY, 'psk_id_hash', EMPTY);
    const infoHash = labeledExtract(HPKE_SUITE, EMPTY, 'info_hash', info);
    ctx = Buffer.concat([Buffer.from([0x00]), pskIdHash, infoHash]);
    if (contexts.size >= 64) contexts.clear();
    contexts.set(id, ctx);
  }
  return ctx;
}

/** RFC 9180 section 7.1.4: an all-zero X25519 output means a small-order point; abort. */
function x25519(privateKey: KeyObject, publicKey: KeyObject): Buffer | undefined {
  const dh = diffieHellman({ privateKey, publicKey });
  return dh.some((b) => b !== 0) ? dh : undefined;
}

/** Seal `plaintext` to the holder of `recipient`'s X25519 key; `aad` is authenticated, not encrypted. */
export function seal(
  recipient: PublicBundle | Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = EMPTY,
  info: Uint8Array = SEAL_INFO,
): Uint8Array {
  const pkRm = recipient instanceof Uint8Array ? recipient : recipient.kem;
  const pkR = rawPublicToKeyObject('x25519', pkRm);
  if (!pkR) throw new TypeError('seal: recipient key must be a 32-byte X25519 key');
  const eph = generateKeyPairSync('x25519');
  const dh = x25519(eph.privateKey, pkR);
  if (!dh) throw new TypeError('seal: recipient key is a small-order point');
  const enc = publicKeyToRaw(eph.publicKey);
  const { key, nonce } = keySchedule(kemSharedSecret(dh, enc, pkRm), info);
  const cipher = createCipheriv('aes-128-gcm', key, nonce);
  cipher.setAAD(aad);
  const ct = cipher.update(plaintext);
  cipher.final();
  const out = new Uint8Array(ENC_LEN + ct.length + TAG);
  out.set(enc, 0);
  out.set(ct, ENC_LEN);
  out.set(cipher.getAuthTag(), ENC_LEN + ct.length);
  return out;
}

/** Open what seal() produced for `recipient`. Never throws: tampering, wrong key or wrong aad/info fail. */
export function open(
  recipient: Identity | KeyObject,
  sealed: Uint8Array,
  aad: Uint8Array = EMPTY,
  info: Uint8Array = SEAL_INFO,
): Result<Uint8Array> {
  try {
    if (!(sealed instanceof Uint8Array) || sealed.length < ENC_LEN + TAG) return fail('sealed message too short');
    const skR = 'kemKey' in recipient ? recipient.kemKey : recipient;
    if (skR.asymmetricKeyType !== 'x25519' || skR.type !== 'private') return fail('not an X25519 private key');
    const enc = sealed.subarray(0, ENC_LEN);
    const pkE = rawPublicToKeyObject('x25519', enc, false);
    if (!pkE) return fail('bad encapsulated key');
    const dh = x25519(skR, pkE);
    if (!dh) return fail('small-order encapsulated key');
    const pkRm = 'kemKey' in recipient ? recipient.bundle.kem : publicKeyToRaw(createPublicKey(skR));
    const { key, nonce } = keySchedule(kemSharedSecret(dh, enc, pkRm), info);
    const decipher = createDecipheriv('aes-128-gcm', key, nonce);
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
    const pt = decipher.update(sealed.subarray(ENC_LEN, sealed.length - TAG));
    decipher.final();
    return ok(new Uint8Array(pt));
  } catch {
    return fail('cannot open: wrong key, aad or tampered message');
  }
}

/** Length of a recipient hint (recipientHint). */
export const HINT_LEN = 8;
const HINT_LABEL = Buffer.from('secp2psip/seal-hint/v1\0');

/**
 * A short, per-message hint naming the recipient's key, so a node holding
 * many keys opens a sealed message with one of them instead of trying all:
 * HMAC-SHA-256 keyed by the recipient's public X25519 key over the sealed
 * message's encapsulated key, first HINT_LEN bytes. Fresh for every message
 * (the encapsulated key is), so hints cannot be linked to one another or to
 * a key by anyone who does not already hold that key; what one who does may
 * test is argued where it is used (secp2psip/callee.ts).
 */
export function recipientHint(recipientKey: Uint8Array, sealed: Uint8Array): Uint8Array {
  const enc = sealed.subarray(0, ENC_LEN);
  return new Uint8Array(
    createHmac('sha256', recipientKey).update(HINT_LABEL).update(enc).digest().subarray(0, HINT_LEN),
  );
}
