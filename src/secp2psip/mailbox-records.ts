/**
 * Offline messages in the ring: the mailbox records and who may write them.
 *
 * A user's mailbox is MAILBOX_SLOTS ring keys `/mbox/<user>/<slot>`. Each
 * holds at most one record (the namespace's validator below), either
 *
 * - a DEPOSIT: a SECP2PSIP MESSAGE signed by its sender and HPKE-sealed to the
 *   recipient's key, so no holder can read it, wrapped in a record signed by
 *   the depositor together with the depositor's user certificate
 *   (user-cert.ts); or
 * - a TOMBSTONE: the mailbox owner's signed "slot emptied up to time `at`".
 *
 * What every holder checks (validate), without rebuilding any key: the
 * certificate was signed by a known bootstrap and valid when the record was
 * signed; the record's signature verifies with the certified key over (kind,
 * key, recipient, slot, time, SHA-256 of the sealed box); a deposit's slot is
 * one of the PER_SENDER_SLOTS slots assigned to its sender in this mailbox
 * (a hash of both names: the per-sender quota, which holders enforce
 * independently); a tombstone is signed by the mailbox owner (only the owner
 * deletes). The record lives MAILBOX_TTL_MS after `at` at most.
 *
 * Which of two valid records a slot keeps (select): the deposit held first
 * (a later one, whatever time it claims, does not overwrite a message not
 * yet collected; replicas that saw two racing deposits in another order keep
 * the other, and the collector reads every replica); a tombstone
 * over a deposit it covers (`at` not older); a deposit over an older
 * tombstone (the slot is free again); the newer of two tombstones.
 */
import { createHash } from 'node:crypto';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { UserKey } from '../identity/user-key.ts';
import type { DhtRecord } from '../dht/store/record.ts';
import { defaultValidator, type RecordValidator } from '../dht/store/validators.ts';
import { fail, ok, type Result } from '../util/errors.ts';
import { LIMITS, NAME_RE } from './messages.ts';
import { USER_CERT_MAX, verifyUserCert } from './user-cert.ts';

export const MAILBOX_NAMESPACE = 'mbox';
/** Messages a mailbox holds at once (its quota). */
export const MAILBOX_SLOTS = 32;
/** Of those, how many one sender may fill (its quota in each mailbox). */
export const PER_SENDER_SLOTS = 4;
/** Default lifetime of a stored message (configurable per adapter, at most this). */
export const MAILBOX_TTL_MS = 7 * 24 * 3600_000;
export const MAILBOX_CONTEXT = 'secp2psip/mailbox/v1';
/** Largest sealed box in a deposit (a SECP2PSIP MESSAGE with its SIP request, sealed). */
export const MAX_BOX = LIMITS.sip + 1024;

export interface MailboxItem {
  k: 'deposit' | 'tomb';
  /** The mailbox owner. */
  to: string;
  slot: number;
  /** When the writer signed it (wall ms). */
  at: number;
  /** Lifetime asked for (ms, at most MAILBOX_TTL_MS). */
  ttl: number;
  /** The writer's user certificate (user-cert.ts). */
  cert: Uint8Array;
  /** Deposit only: the sealed SECP2PSIP MESSAGE. */
  box?: Uint8Array;
  sig: Uint8Array;
}

export function mailboxKey(owner: string, slot: number): string {
  return `/${MAILBOX_NAMESPACE}/${owner}/${slot}`;
}

/** The slots of `owner`'s mailbox that `sender` may deposit into (distinct, in preference order). */
export function slotsFor(owner: string, sender: string): number[] {
  const out: number[] = [];
  for (let i = 0; out.length < PER_SENDER_SLOTS && i < 1000; i++) {
    const h = createHash('sha256').update(`${owner}\u0000${sender}\u0000${i}`).digest();
    const s = h.readUInt32BE(0) % MAILBOX_SLOTS;
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

export function itemTbs(key: string, m: Omit<MailboxItem, 'sig' | 'cert'>): Uint8Array {
  const boxHash = m.box ? createHash('sha256').update(m.box).digest() : new Uint8Array(0);
  return cborEncode(['MAILBOX', m.k, key, m.to, m.slot, m.at, m.ttl, new Uint8Array(boxHash)]);
}

export function encodeItem(m: MailboxItem): Uint8Array {
  const o: Record<string, unknown> = { k: m.k, to: m.to, slot: m.slot, at: m.at, ttl: m.ttl, cert: m.cert, sig: m.sig };
  if (m.box) o.box = m.box;
  return cborEncode(o);
}

/** Decode untrusted bytes. Never throws; checks no signature. */
export function decodeItem(v: unknown): Result<MailboxItem> {
  if (!(v instanceof Uint8Array) || v.length > MAX_BOX + USER_CERT_MAX + 512) return fail('bad mailbox record size');
  let o: Record<string, unknown>;
  try {
    o = cborDecode(v, { strict: true, rejectDuplicateMapKeys: true }) as Record<string, unknown>;
  } catch {
    return fail('mailbox record is not CBOR');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return fail('mailbox record is not a map');
  const { k, to, slot, at, ttl, cert, box, sig } = o;
  const int = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (k !== 'deposit' && k !== 'tomb') return fail('bad mailbox record kind');
  if (typeof to !== 'string' || !NAME_RE.test(to)) return fail('bad mailbox owner');
  if (!int(slot) || (slot as number) >= MAILBOX_SLOTS) return fail('bad slot');
  if (!int(at) || !int(ttl) || (ttl as number) > MAILBOX_TTL_MS || (ttl as number) === 0) return fail('bad time');
  if (!(cert instanceof Uint8Array) || !(sig instanceof Uint8Array) || sig.length > LIMITS.sig)
    return fail('bad signature');
  if (k === 'deposit' && !(box instanceof Uint8Array && box.length <= MAX_BOX)) return fail('deposit without a box');
  if (k === 'tomb' && box !== undefined) return fail('tombstone with a box');
  return ok({
    k,
    to,
    slot: slot as number,
    at: at as number,
    ttl: ttl as number,
    cert,
    sig,
    ...(box ? { box: box as Uint8Array } : {}),
  });
}

/** Why `value` may not be held under `key` (null when it may). What every holder checks: see the module comment. */
export function checkItem(
  key: string,
  value: unknown,
  bootstrapKeys: Iterable<Uint8Array>,
  now: number,
): string | null {
  const d = decodeItem(value);
  if (!d.ok) return d.error;
  const m = d.value;
  if (key !== mailboxKey(m.to, m.slot)) return 'mailbox record under another key';
  if (m.at > now + 5 * 60_000) return 'signed in the future';
  if (m.at + m.ttl <= now) return 'expired';
  const cert = verifyUserCert(m.cert, bootstrapKeys, m.at);
  if (!cert.ok) return cert.error;
  const writer = cert.value.bundle.name;
  if (m.k === 'tomb' && writer !== m.to) return 'only the mailbox owner may empty a slot';
  if (m.k === 'deposit' && !slotsFor(m.to, writer).includes(m.slot)) return `slot ${m.slot} is not ${writer}'s`;
  const k = UserKey.decode(cert.value.bundle.signKey);
  if (!k.ok) return 'bad certified key';
  if (!k.value.verify(MAILBOX_CONTEXT, itemTbs(key, m), m.sig)) return 'mailbox record signature does not verify';
  return null;
}

function itemOf(r: DhtRecord): MailboxItem | undefined {
  const d = decodeItem(r.value);
  return d.ok ? d.value : undefined;
}

/** The validator of the `mbox` namespace (see the module comment). */
export function mailboxValidator(bootstrapKeys: Iterable<Uint8Array>): RecordValidator {
  const base = defaultValidator(MAILBOX_TTL_MS);
  return {
    validate(r, now) {
      return base.validate(r, now) ?? checkItem(r.key, r.value, bootstrapKeys, now);
    },
    expiresBy: (r) => {
      const m = itemOf(r);
      return m ? m.at + m.ttl : 0;
    },
    select(a, b) {
      const x = itemOf(a);
      const y = itemOf(b);
      if (!x || !y) return x ? a : b;
      // The deposit held first stays (the store passes the record it holds as `a`): a later one, even one
      // signed with an earlier time, does not displace a message not yet collected.
      if (x.k === 'deposit' && y.k === 'deposit') return a;
      if (x.k === 'tomb' && y.k === 'tomb') return x.at >= y.at ? a : b;
      const [tomb, dep, ta, da] = x.k === 'tomb' ? [x, y, a, b] : [y, x, b, a];
      return tomb.at >= dep.at ? ta : da;
    },
  };
}
