/**
 * Offline messages (mailbox-records.ts has the records and the holders'
 * checks). Two sides:
 *
 * - `deposit` (the sender's adapter, when the recipient's adapter cannot be
 *   reached or no phone of the recipient took the message): the very
 *   SECP2PSIP MESSAGE the sender signed, HPKE-sealed to the recipient's key,
 *   goes into a free slot of the sender's share of the recipient's mailbox;
 *   the slot is read back from every replica, so a deposit that lost a race
 *   for a slot moves to the next one. The sender's phone gets 202.
 * - `collect` (the recipient's adapter, when a phone of the user registers):
 *   first the mailbox's mark key is read from every replica; unless a
 *   depositor's MARK is newer than the owner's last SEEN (mailbox-records.ts),
 *   the mailbox is empty and nothing more is read (a few RPCs instead of
 *   every replica of every slot). Otherwise every replica of every slot is read (a holder that hides or alters a
 *   record is outvoted by the others; an altered record fails the holders'
 *   own checks and ours), each deposit is opened, its inner MESSAGE checked
 *   like a live one (sender's key rebuilt through the ring, signature, SIP
 *   consistent) and delivered in the order the senders signed them; then the
 *   slot is emptied with a tombstone only the owner can sign, and once every
 *   slot was read and nothing is kept, SEEN is written.
 *
 * Nothing twice: the nonce of every MESSAGE delivered here (live or stored)
 * is kept on disk (DeliveredLog) before the tombstone is written, so a
 * restart between the two, or the same message both delivered live and
 * stored after a timeout, is delivered once. Nothing lost: a record is only
 * emptied after a phone took it, and every copy lives on r replicas, put
 * again by its writer until its TTL.
 */
import type { ChordNode } from '../dht/chord/chord-node.ts';
import type { DhtRecord } from '../dht/store/record.ts';
import { open, seal } from '../identity/seal.ts';
import type { Clock } from '../util/clock.ts';
import { isOverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { LocalUser, LocalUsers } from './call-common.ts';
import { refuse } from './call-checks.ts';
import type { VerifiedUser } from './key-lookup.ts';
import {
  decodeItem,
  encodeItem,
  itemTbs,
  MAILBOX_CONTEXT,
  MAILBOX_SLOTS,
  MAILBOX_TTL_MS,
  MARK_SKEW_MS,
  type MailboxItem,
  mailboxKey,
  markKey,
  slotsFor,
} from './mailbox-records.ts';
import { callTbs, DOMAIN, decodeMessage, encodeMessage, type ImMsg } from './messages.ts';
import { checkImSip, type PhoneInbox } from './messaging.ts';
import { decodeUserCert } from './user-cert.ts';
import type { VerifiedUsers } from './verified-users.ts';
import { getHeader } from '../sip/message.ts';

/** The nonces of MESSAGEs delivered at this adapter (kept across restarts by the daemon). */
export interface DeliveredLog {
  has(nonce: Uint8Array): boolean;
  add(nonce: Uint8Array, at: number): void;
}

/** How often a user's mailbox is read again on REGISTER refreshes of a phone that stayed online (ms). */
export const COLLECT_INTERVAL_MS = 10 * 60_000;

export class MemoryDeliveredLog implements DeliveredLog {
  private readonly seen = new Map<string, number>();
  has(nonce: Uint8Array): boolean {
    return this.seen.has(Buffer.from(nonce).toString('hex'));
  }
  add(nonce: Uint8Array, at: number): void {
    if (this.seen.size >= 100_000) this.seen.delete(this.seen.keys().next().value as string);
    this.seen.set(Buffer.from(nonce).toString('hex'), at);
  }
}

export interface MailboxContext {
  ring: ChordNode;
  users: LocalUsers;
  verified: VerifiedUsers;
  clock: Clock;
  log: Logger;
  inbox?: PhoneInbox;
  delivered: DeliveredLog;
  /** Lifetime of a stored message (ms, at most MAILBOX_TTL_MS). */
  ttlMs: number;
}

export interface CollectReport {
  delivered: number;
  /** Deposits opened but refused (not sealed to us, not signed by their sender...), with why. */
  refused: Array<{ slot: number; reason: string }>;
  /** Deposits kept because no phone took them. */
  kept: number;
  /** Some slot could not be read (its lookup failed, as while the ring settles): a deposit may be waiting there. */
  incomplete?: boolean;
}

export class Mailbox {
  /** quickChecks: collections that found nothing new on the mark key and read no slot. */
  readonly stats = { deposits: 0, collected: 0, refused: 0, quickChecks: 0 };
  private readonly ctx: MailboxContext;
  /** Users whose mailbox is being collected now (a second REGISTER does not start another pass). */
  private readonly collecting = new Map<string, Promise<CollectReport>>();
  /** When each user's mailbox was last collected (monotonic ms). */
  private readonly lastCollect = new Map<string, number>();

  constructor(ctx: MailboxContext) {
    this.ctx = ctx;
  }

  get ttlMs(): number {
    return Math.min(this.ctx.ttlMs, MAILBOX_TTL_MS);
  }

  /** Store `m` (signed by `sender`) for `recipient`; resolves with the slot used. */
  async deposit(sender: LocalUser, recipient: VerifiedUser, m: ImMsg): Promise<number> {
    const cert = sender.cert ?? refuse('VERIFICATION_FAILED', `${sender.name} holds no user certificate`);
    const to = recipient.bundle.name;
    const box = seal(recipient.bundle.sealKey, encodeMessage(m));
    const mine = slotsFor(to, sender.name);
    const now = this.ctx.clock.wallNow();
    const held = await this.ctx.ring.getReplicas(mine.map((s) => mailboxKey(to, s)));
    for (const slot of mine) {
      const key = mailboxKey(to, slot);
      const taken = (held.get(key) ?? []).some((r) => {
        const d = decodeItem(r.value);
        return d.ok && d.value.k === 'deposit' && !this.emptied(held.get(key) ?? [], d.value);
      });
      if (taken) continue;
      const body: Omit<MailboxItem, 'sig' | 'cert'> = { k: 'deposit', to, slot, at: now, ttl: this.ttlMs, box };
      const item: MailboxItem = { ...body, cert, sig: sender.signer.sign(MAILBOX_CONTEXT, itemTbs(key, body)) };
      const value = encodeItem(item);
      const put = await this.ctx.ring.put(key, value, this.ttlMs);
      if (!put.ok) {
        this.ctx.log.info({ to, slot, reason: put.reason }, 'mailbox slot refused the deposit');
        continue;
      }
      // Read back: another deposit may have won the slot meanwhile (the first one is kept).
      const back = (await this.ctx.ring.getReplicas([key])).get(key) ?? [];
      if (!back.some((r) => sameBytes(r.value, value))) {
        this.ctx.ring.unpublish(key);
        continue;
      }
      this.republishUntilExpiry(key);
      // Only now: a collector that finds the mark finds the deposit (see mailbox-records.ts). A mark the ring
      // could not take yet is put again by the ring's maintenance, as any put.
      const mark = await this.putSigned(sender.signer, cert, 'mark', to, this.ctx.clock.wallNow());
      if (!mark.ok) this.ctx.log.warn({ to, reason: mark.reason }, 'mailbox mark not stored yet');
      this.stats.deposits++;
      this.ctx.log.info({ from: sender.name, to, slot }, `message to ${to} stored in the ring`);
      return slot;
    }
    refuse('CALLEE_UNREACHABLE', `${to} is offline and holds no more messages from ${sender.name}`);
  }

  /** Whether `dep` is covered by a tombstone among `recs` (already collected). */
  private emptied(recs: DhtRecord[], dep: MailboxItem): boolean {
    return recs.some((r) => {
      const d = decodeItem(r.value);
      return d.ok && d.value.k === 'tomb' && d.value.at >= dep.at;
    });
  }

  /** The writer put a record with `ring.put`, which republishes it: stop once it has expired everywhere. */
  private republishUntilExpiry(key: string): void {
    this.ctx.clock.setTimer(this.ttlMs, () => this.ctx.ring.unpublish(key));
  }

  /**
   * On a REGISTER: collect when a phone of the user just came online, else at most every
   * COLLECT_INTERVAL_MS (a phone refreshing every minute must not read 32 slots from every replica each time).
   */
  collectIfDue(name: string, cameOnline: boolean): Promise<CollectReport> | undefined {
    const now = this.ctx.clock.now();
    const last = this.lastCollect.get(name);
    if (!cameOnline && last !== undefined && now - last < COLLECT_INTERVAL_MS) return undefined;
    return this.collect(name);
  }

  /** Collect `name`'s mailbox (once at a time), delivering to its phones; see the module comment. */
  collect(name: string): Promise<CollectReport> {
    this.lastCollect.set(name, this.ctx.clock.now());
    if (this.lastCollect.size > 100_000) this.lastCollect.delete(this.lastCollect.keys().next().value as string);
    let p = this.collecting.get(name);
    if (!p) {
      p = this.collectNow(name).finally(() => this.collecting.delete(name));
      this.collecting.set(name, p);
    }
    return p;
  }

  private async collectNow(name: string): Promise<CollectReport> {
    const report: CollectReport = { delivered: 0, refused: [], kept: 0 };
    const user = this.ctx.users.get(name);
    if (!user?.cert || !this.ctx.inbox) return report;
    const started = this.ctx.clock.wallNow();
    const marks = (await this.ctx.ring.getReplicas([markKey(name)])).get(markKey(name));
    // Read (no lookup failed) and nothing newer than the last collection: the common case, done.
    if (marks && !this.marked(marks)) {
      this.stats.quickChecks++;
      return report;
    }
    const keys = Array.from({ length: MAILBOX_SLOTS }, (_, s) => mailboxKey(name, s));
    const held = await this.ctx.ring.getReplicas(keys);
    const found: Array<{ slot: number; dep: MailboxItem; m?: ImMsg; why?: string }> = [];
    for (const [key, recs] of held) {
      const seen = new Set<string>();
      for (const r of recs) {
        const d = decodeItem(r.value);
        if (!d.ok || d.value.k !== 'deposit' || this.emptied(recs, d.value)) continue;
        const id = Buffer.from(d.value.sig).toString('base64');
        if (seen.has(id)) continue;
        seen.add(id);
        const slot = d.value.slot;
        if (mailboxKey(name, slot) !== key) continue;
        found.push({ slot, dep: d.value, ...(await this.openDeposit(user, d.value)) });
      }
    }
    // In the order the senders signed them.
    found.sort((a, b) => (a.m?.ts ?? 0) - (b.m?.ts ?? 0));
    for (const f of found) {
      if (!f.m) {
        this.stats.refused++;
        report.refused.push({ slot: f.slot, reason: f.why ?? 'refused' });
        this.ctx.log.warn({ user: name, slot: f.slot, reason: f.why }, 'stored message refused');
        await this.empty(user, f.slot, f.dep.at);
        continue;
      }
      if (!this.ctx.delivered.has(f.m.nonce)) {
        const sip = checkImSip(f.m);
        const n = await this.ctx.inbox.deliver(name, f.m.name, sip.body, getHeader(sip, 'Content-Type'));
        if (n === 0) {
          report.kept++;
          continue;
        }
        this.ctx.delivered.add(f.m.nonce, this.ctx.clock.wallNow());
        report.delivered++;
        this.stats.collected++;
        this.ctx.log.info({ user: name, from: f.m.name, slot: f.slot }, 'stored message delivered');
      }
      await this.empty(user, f.slot, f.dep.at);
    }
    if (held.size < keys.length) report.incomplete = true;
    // Every slot read and nothing left: marks up to MARK_SKEW_MS before we began are answered.
    if (held.size === keys.length && report.kept === 0) {
      // Not dated before the user's certificate was issued (holders would refuse it, user-cert.ts).
      const cert = decodeUserCert(user.cert);
      const at = Math.max(started - MARK_SKEW_MS, cert.ok ? cert.value.issuedAt : started);
      const seen = await this.putSigned(user.signer, user.cert, 'seen', name, at);
      if (!seen.ok) this.ctx.log.info({ user: name, reason: seen.reason }, 'mailbox not marked collected');
    }
    return report;
  }

  /** Whether some replica holds a depositor's mark newer than every SEEN the replicas hold. */
  private marked(recs: DhtRecord[]): boolean {
    let seen = -1;
    let mark = -1;
    for (const r of recs) {
      const d = decodeItem(r.value);
      if (!d.ok) continue;
      if (d.value.k === 'seen') seen = Math.max(seen, d.value.at);
      else if (d.value.k === 'mark') mark = Math.max(mark, d.value.at);
    }
    return mark > seen;
  }

  /** Sign and put a mark or a seen on `to`'s mark key, republished until it expires. */
  private async putSigned(
    signer: LocalUser['signer'],
    cert: Uint8Array,
    k: 'mark' | 'seen',
    to: string,
    at: number,
  ): Promise<{ ok: boolean; reason?: string }> {
    const key = markKey(to);
    const body: Omit<MailboxItem, 'sig' | 'cert'> = { k, to, slot: 0, at, ttl: this.ttlMs };
    const item: MailboxItem = { ...body, cert, sig: signer.sign(MAILBOX_CONTEXT, itemTbs(key, body)) };
    const put = await this.ctx.ring.put(key, encodeItem(item), this.ttlMs);
    if (put.ok) this.republishUntilExpiry(key);
    return put.ok ? { ok: true } : { ok: false, reason: put.reason };
  }

  /** Open a deposit and check the MESSAGE inside as the recipient's adapter checks a live one. */
  private async openDeposit(user: LocalUser, dep: MailboxItem): Promise<{ m?: ImMsg; why?: string }> {
    const o = open(user.kem, dep.box as Uint8Array);
    if (!o.ok) return { why: 'not sealed to this user' };
    const d = decodeMessage(o.value);
    if (!d.ok || d.value.t !== 'MESSAGE') return { why: 'sealed box holds no MESSAGE' };
    const m = d.value;
    if (m.to !== user.name) return { why: `MESSAGE for ${m.to}` };
    try {
      checkImSip(m);
      await this.ctx.verified.verifySigned(m.name, (u) => u.key.verify(DOMAIN.message, callTbs(m), m.sig));
      return { m };
    } catch (e) {
      if (isOverlayError(e) && ['RPC_TIMEOUT', 'TIMEOUT', 'DHT_LOOKUP_FAILED'].includes(e.code))
        return { why: `could not verify ${m.name} now` };
      return { why: (e as Error).message };
    }
  }

  /** Tombstone `slot` of `user`'s mailbox up to `at` (only the owner can sign it). */
  private async empty(user: LocalUser, slot: number, at: number): Promise<void> {
    const key = mailboxKey(user.name, slot);
    const body: Omit<MailboxItem, 'sig' | 'cert'> = { k: 'tomb', to: user.name, slot, at, ttl: this.ttlMs };
    const item: MailboxItem = {
      ...body,
      cert: user.cert as Uint8Array,
      sig: user.signer.sign(MAILBOX_CONTEXT, itemTbs(key, body)),
    };
    const put = await this.ctx.ring.put(key, encodeItem(item), this.ttlMs);
    if (!put.ok) this.ctx.log.warn({ user: user.name, slot, reason: put.reason }, 'mailbox slot not emptied');
    else this.republishUntilExpiry(key);
  }
}

function sameBytes(a: Uint8Array | string, b: Uint8Array): boolean {
  return a instanceof Uint8Array && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}
