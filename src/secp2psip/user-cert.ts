/**
 * The user certificate: a bootstrap's signature binding a registered name to
 * the user's keys, issued in every REGISTERED (bootstrap-server.ts).
 *
 * Why it exists: a ring member holding a mailbox record (mailbox-records.ts)
 * must decide on its own whether the depositor is a registered user, and may
 * not rebuild the user's key from k pieces for every STORE and every
 * replication. The certificate makes that check local and cheap: one
 * Ed25519 verification against the bootstrap keys every member already
 * holds (the ones that sign ring envelopes), then the depositor's signature
 * with the certified key. It carries no more than the ring already makes
 * public (name, public keys, registration time).
 *
 * Lifetime: USER_CERT_TTL_MS from issue; a deposit is accepted when it was
 * signed while the certificate was valid, so a record replicated days later
 * stays valid for its own TTL. A re-registration with a new key gets a new
 * certificate; an older one stays valid until it expires (the same window as
 * a cached key elsewhere; see docs/design.md "Offline messages").
 */
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import type { Identity } from '../identity/identity.ts';
import { verifyEd25519 } from '../identity/signature.ts';
import { bytesEqual } from '../util/bytes.ts';
import { fail, ok, type Result } from '../util/errors.ts';
import { LIMITS, NAME_RE, type UserKeyBundle } from './messages.ts';

export const USER_CERT_CONTEXT = 'secp2psip/user-cert/v1';
/** How long a user certificate is valid after issue. */
export const USER_CERT_TTL_MS = 30 * 24 * 3600_000;
/** Largest encoded certificate accepted. */
export const USER_CERT_MAX = LIMITS.spki + 256;

export interface UserCert {
  bundle: UserKeyBundle;
  issuedAt: number;
  expiresAt: number;
  /** Raw Ed25519 key of the issuing bootstrap. */
  by: Uint8Array;
  sig: Uint8Array;
}

function tbs(c: Omit<UserCert, 'sig' | 'by'>): Uint8Array {
  const b = c.bundle;
  return cborEncode(['USER-CERT', b.name, b.signKey, b.sealKey, b.registeredAt, c.issuedAt, c.expiresAt]);
}

export function issueUserCert(bootstrap: Identity, bundle: UserKeyBundle, now: number): Uint8Array {
  const body = { bundle, issuedAt: now, expiresAt: now + USER_CERT_TTL_MS };
  const sig = bootstrap.sign(USER_CERT_CONTEXT, tbs(body));
  const b = bundle;
  return cborEncode([
    b.name,
    b.signKey,
    b.sealKey,
    b.registeredAt,
    body.issuedAt,
    body.expiresAt,
    bootstrap.bundle.sig,
    sig,
  ]);
}

/** Decode untrusted bytes. Never throws; does not check the signature. */
export function decodeUserCert(bytes: unknown): Result<UserCert> {
  if (!(bytes instanceof Uint8Array) || bytes.length > USER_CERT_MAX) return fail('bad user certificate size');
  let v: unknown;
  try {
    v = cborDecode(bytes, { strict: true, rejectDuplicateMapKeys: true });
  } catch {
    return fail('user certificate is not CBOR');
  }
  if (!Array.isArray(v) || v.length !== 8) return fail('bad user certificate');
  const [name, signKey, sealKey, registeredAt, issuedAt, expiresAt, by, sig] = v;
  const int = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (typeof name !== 'string' || !NAME_RE.test(name)) return fail('bad user certificate name');
  if (!(signKey instanceof Uint8Array) || signKey.length > LIMITS.spki) return fail('bad certified key');
  if (!(sealKey instanceof Uint8Array) || sealKey.length !== 32) return fail('bad certified seal key');
  if (!int(registeredAt) || !int(issuedAt) || !int(expiresAt)) return fail('bad user certificate times');
  if (!(by instanceof Uint8Array) || by.length !== 32 || !(sig instanceof Uint8Array) || sig.length !== 64)
    return fail('bad user certificate signature');
  return ok({ bundle: { name, signKey, sealKey, registeredAt }, issuedAt, expiresAt, by, sig });
}

/** The certificate, when a known bootstrap signed it and it was valid at `at` (wall ms). */
export function verifyUserCert(bytes: unknown, bootstrapKeys: Iterable<Uint8Array>, at: number): Result<UserCert> {
  const c = decodeUserCert(bytes);
  if (!c.ok) return c;
  let known = false;
  for (const k of bootstrapKeys) if (bytesEqual(k, c.value.by)) known = true;
  if (!known) return fail('user certificate not issued by a known bootstrap');
  if (!verifyEd25519(c.value.by, USER_CERT_CONTEXT, tbs(c.value), c.value.sig))
    return fail('user certificate signature does not verify');
  if (at < c.value.issuedAt - 5 * 60_000 || at > c.value.expiresAt) return fail('user certificate not valid then');
  return c;
}
