/**
 * A user's presence as a ring record: `/pres/<user>`, written by the user's
 * adapter on every change with a short TTL (PRESENCE_TTL_MS), read by a
 * watcher's adapter when the user's adapter cannot be reached (presence.ts).
 *
 * Who may write it, checked by every holder without rebuilding keys: the
 * record carries the writer's user certificate (user-cert.ts), which must be
 * signed by a known bootstrap and name the user the key is for, and the
 * record is signed by the certified key over (key, state, time, TTL). Of two
 * valid records the one with the larger state `seq` wins, so an older one
 * replayed to a holder cannot replace the newer. A reader checks the
 * signature again with the key it rebuilt from the ring (not the
 * certificate's), so what it shows is what the user's adapter published.
 */
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import type { DhtRecord } from '../dht/store/record.ts';
import { defaultValidator, type RecordValidator } from '../dht/store/validators.ts';
import { UserKey } from '../identity/user-key.ts';
import { fail, ok, type Result } from '../util/errors.ts';
import type { ChordNode } from '../dht/chord/chord-node.ts';
import type { LocalUser } from './call-common.ts';
import { decodePresenceState, encodePresenceState, LIMITS, NAME_RE, type PresenceState } from './messages.ts';
import type { VerifiedUsers } from './verified-users.ts';
import { USER_CERT_MAX, verifyUserCert } from './user-cert.ts';

export const PRESENCE_NAMESPACE = 'pres';
/** How long a published presence record lives: short, so a lapsed adapter's "open" does not linger. */
export const PRESENCE_TTL_MS = 5 * 60_000;
export const PRESENCE_RECORD_CONTEXT = 'secp2psip/presence-record/v1';

export interface PresenceRecord {
  name: string;
  /** encodePresenceState of the state. */
  state: Uint8Array;
  at: number;
  ttl: number;
  cert: Uint8Array;
  sig: Uint8Array;
}

export function presenceKey(name: string): string {
  return `/${PRESENCE_NAMESPACE}/${name}`;
}

export function presenceTbs(key: string, r: Omit<PresenceRecord, 'sig' | 'cert'>): Uint8Array {
  return cborEncode(['PRESENCE-RECORD', key, r.name, r.state, r.at, r.ttl]);
}

export function encodePresenceRecord(r: PresenceRecord): Uint8Array {
  return cborEncode({ name: r.name, state: r.state, at: r.at, ttl: r.ttl, cert: r.cert, sig: r.sig });
}

export function decodePresenceRecord(v: unknown): Result<PresenceRecord & { parsed: PresenceState }> {
  if (!(v instanceof Uint8Array) || v.length > USER_CERT_MAX + 1024) return fail('bad presence record size');
  let o: Record<string, unknown>;
  try {
    o = cborDecode(v, { strict: true, rejectDuplicateMapKeys: true }) as Record<string, unknown>;
  } catch {
    return fail('presence record is not CBOR');
  }
  if (typeof o !== 'object' || o === null) return fail('presence record is not a map');
  const { name, state, at, ttl, cert, sig } = o;
  const int = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (typeof name !== 'string' || !NAME_RE.test(name)) return fail('bad name');
  if (!(state instanceof Uint8Array) || !int(at) || !int(ttl) || (ttl as number) > PRESENCE_TTL_MS)
    return fail('bad presence record fields');
  if (!(cert instanceof Uint8Array) || !(sig instanceof Uint8Array) || sig.length > LIMITS.sig)
    return fail('bad presence record signature');
  const parsed = decodePresenceState(state);
  if (!parsed.ok) return fail(parsed.error);
  return ok({ name, state, at: at as number, ttl: ttl as number, cert, sig, parsed: parsed.value });
}

/** The validator of the `pres` namespace (see the module comment). */
export function presenceValidator(bootstrapKeys: Iterable<Uint8Array>): RecordValidator {
  const base = defaultValidator(PRESENCE_TTL_MS);
  const seqOf = (r: DhtRecord) => {
    const d = decodePresenceRecord(r.value);
    return d.ok ? d.value.parsed.seq : -1;
  };
  return {
    validate(r, now) {
      const why = base.validate(r, now);
      if (why !== null) return why;
      const d = decodePresenceRecord(r.value);
      if (!d.ok) return d.error;
      const p = d.value;
      if (r.key !== presenceKey(p.name)) return 'presence record under another key';
      if (p.at > now + 5 * 60_000) return 'signed in the future';
      if (p.at + p.ttl <= now) return 'expired';
      const cert = verifyUserCert(p.cert, bootstrapKeys, p.at);
      if (!cert.ok) return cert.error;
      if (cert.value.bundle.name !== p.name) return 'only the user publishes its presence';
      const k = UserKey.decode(cert.value.bundle.signKey);
      if (!k.ok || !k.value.verify(PRESENCE_RECORD_CONTEXT, presenceTbs(r.key, p), p.sig))
        return 'presence record signature does not verify';
      return null;
    },
    expiresBy: (r) => {
      const d = decodePresenceRecord(r.value);
      return d.ok ? d.value.at + d.value.ttl : 0;
    },
    select: (a, b) => (seqOf(b) > seqOf(a) ? b : a),
  };
}

/** Sign `state` as `user`'s presence record and put it in the ring; resolves with why it was not stored, if not. */
export async function writePresenceRecord(
  ring: ChordNode,
  user: LocalUser,
  state: PresenceState,
  at: number,
): Promise<string | undefined> {
  const key = presenceKey(user.name);
  const body = { name: user.name, state: encodePresenceState(state), at, ttl: PRESENCE_TTL_MS };
  const sig = user.signer.sign(PRESENCE_RECORD_CONTEXT, presenceTbs(key, body));
  const r = await ring.put(key, encodePresenceRecord({ ...body, cert: user.cert as Uint8Array, sig }), PRESENCE_TTL_MS);
  return r.ok ? undefined : r.reason;
}

/** `name`'s presence as its record in the ring says, if the signature verifies with the key rebuilt from the ring. */
export async function readPresenceRecord(
  ring: ChordNode,
  verified: VerifiedUsers,
  name: string,
): Promise<PresenceState | undefined> {
  const key = presenceKey(name);
  const got = await ring.get(key);
  if (!got.ok) return undefined;
  const d = decodePresenceRecord(got.value);
  if (!d.ok || d.value.name !== name) return undefined;
  const u = await verified.verify(name);
  return u.key.verify(PRESENCE_RECORD_CONTEXT, presenceTbs(key, d.value), d.value.sig) ? d.value.parsed : undefined;
}
