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
 * Beside the slots, one key `/mbox/<user>/new` says whether there is anything
 * to collect, so that looking at an empty mailbox (the common case at every
 * registration) reads one key instead of every slot: a depositor writes a
 * MARK there ("I deposited at `at`", signed like a deposit) after its deposit
 * is stored; the owner writes SEEN ("collected everything stored before
 * `at`") after a full collection. The holders keep the newer of the two, so
 * a mark newer than the last SEEN means "read the slots". A SEEN is dated
 * MARK_SKEW_MS before the collection began: a mark signed on a clock behind
 * ours, or stored while the slots were being read, stays newer and is
 * collected at the next check; no holder can forge either (signatures), and
 * one that hides the mark is outvoted, since the collector reads every replica.
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
/** How far before a full collection its SEEN is dated (the clock skew between adapters tolerated, ms). */
export const MARK_SKEW_MS = 5 * 60_000;

export interface MailboxItem {
  k: 'deposit' | 'tomb' | 'mark' | 'seen';
  /** The mailbox owner. */
  to: string;
  /** The slot (0 for a mark and a seen). */
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

/** The key saying whether `owner`'s mailbox holds anything new (see the module comment). */
export function markKey(owner: string): string {
  return `/${MAILBOX_NAMESPACE}/${owner}/new`;
}

/** The key a record of kind `k` for `to`'s slot `slot` belongs under. */
function keyOf(m: Pick<MailboxItem, 'k' | 'to' | 'slot'>): string {
  return m.k === 'mark' || m.k === 'seen' ? markKey(m.to) : mailboxKey(m.to, m.slot);
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
  if (k !== 'deposit' && k !== 'tomb' && k !== 'mark' && k !== 'seen') return fail('bad mailbox record kind');
  if (typeof to !== 'string' || !NAME_RE.test(to)) return fail('bad mailbox owner');
  if (!int(slot) || (slot as number) >= MAILBOX_SLOTS) return fail('bad slot');
  if ((k === 'mark' || k === 'seen') && slot !== 0) return fail('bad slot');
  if (!int(at) || !int(ttl) || (ttl as number) > MAILBOX_TTL_MS || (ttl as number) === 0) return fail('bad time');
  if (!(cert instanceof Uint8Array) || !(sig instanceof Uint8Array) || sig.length > LIMITS.sig)
    return fail('bad signature');
  if (k === 'deposit' && !(box instanceof Uint8Array && box.length <= MAX_BOX)) return fail('deposit without a box');
  if (k !== 'deposit' && box !== undefined) return fail(`${k} with a box`);
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
  if (key !== keyOf(m)) return 'mailbox record under another key';
  if (m.at > now + 5 * 60_000) return 'signed in the future';
  if (m.at + m.ttl <= now) return 'expired';
  const cert = verifyUserCert(m.cert, bootstrapKeys, m.at);
  if (!cert.ok) return cert.error;
  const writer = cert.value.bundle.name;
  if (m.k === 'tomb' && writer !== m.to) return 'only the mailbox owner may empty a slot';
  if (m.k === 'seen' && writer !== m.to) return 'only the mailbox owner may mark it collected';
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
      // The mark key (checkItem keeps marks and seens there alone): the newer says what to do; a tie, SEEN.
      if ((x.k === 'mark' || x.k === 'seen') && (y.k === 'mark' || y.k === 'seen')) {
        if (x.at !== y.at) return x.at > y.at ? a : b;
        return x.k === 'seen' ? a : b;
      }
      if (x.k === 'tomb' && y.k === 'tomb') return x.at >= y.at ? a : b;
      const [tomb, dep, ta, da] = x.k === 'tomb' ? [x, y, a, b] : [y, x, b, a];
      return tomb.at >= dep.at ? ta : da;
    },
  };
}
