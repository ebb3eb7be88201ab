/**
 * Presence (RFC 3856 semantics) between SecP2PSIP adapters, the overlay half.
 *
 * - The watcher's adapter (`watch`): a local user whose phone subscribed to
 *   `alice` verifies alice through the ring like a callee (VerifiedUsers) and
 *   sends her adapter a WATCH signed by the watcher (sealed to alice in
 *   protected mode). The answer is a PRESENCE signed by alice echoing the
 *   WATCH's nonce. The WATCH is repeated every WATCH_REFRESH_MS while a phone
 *   still subscribes; alice's adapter forgets a watcher WATCH_TTL_MS after
 *   its last WATCH (so a restart of either side heals within a minute).
 * - The presentity's adapter: keeps, per local user, the adapters of its
 *   verified watchers, and pushes a PRESENCE signed by the user to each of
 *   them whenever the user's state changes: a phone registered, unregistered
 *   or its registration lapsed (a tick every TICK_MS compares), or a PUBLISH
 *   (RFC 3903) set a status or note.
 *
 * What a watcher learns is only what the presentity's adapter signed with
 * the presentity's key: every PRESENCE is checked against the key rebuilt
 * from the ring, and a state is taken only if its `seq` is newer than the
 * last one (no rollback to an older, genuine state). Any registered user may
 * watch any other (no authorization list): the state is open/closed and a
 * note, which a caller learns anyway by calling.
 *
 * The ring: every new state is also signed into `/pres/<user>` with a short
 * TTL (presence-records.ts, signed again before it lapses); a watcher whose
 * WATCH cannot reach the presentity's adapter shows what that record says,
 * checked with the key rebuilt from the ring, and keeps trying the WATCH.
 *
 * Both sides send their messages to the other adapter with adapter-request.ts.
 */
import type { ReplayCache } from '../identity/replay-cache.ts';
import type { Caller, NodeRef, RpcEndpoint } from '../rpc/types.ts';
import { bytesEqual } from '../util/bytes.ts';
import type { Clock, Timer } from '../util/clock.ts';
import { type ErrorCode, isOverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { Random } from '../util/random.ts';
import { type LocalUser, type LocalUsers, type Opened, type SecurityMode, sealFor } from './call-common.ts';
import { refuse } from './call-checks.ts';
import { requestAdapter } from './adapter-request.ts';
import type { VerifiedUser } from './key-lookup.ts';
import {
  callTbs,
  DOMAIN,
  type DeliveredMsg,
  decodePresenceState,
  encodeMessage,
  encodePresenceState,
  type PresenceMsg,
  type PresenceState,
  type WatchMsg,
} from './messages.ts';
import { PRESENCE_TTL_MS, readPresenceRecord, writePresenceRecord } from './presence-records.ts';
import type { VerifiedUsers } from './verified-users.ts';
import type { ChordNode } from '../dht/chord/chord-node.ts';

export const WATCH_TTL_MS = 120_000;
export const WATCH_REFRESH_MS = 60_000;
/** First wait before a failed WATCH is tried again (doubling up to WATCH_REFRESH_MS). */
export const WATCH_RETRY_FIRST_MS = 2000;
export const TICK_MS = 2000;
/** Watchers kept per local user. */
export const MAX_WATCHERS = 1000;

/** What the overlay half needs of the phones (the SIP half, phone-presence.ts). */
export interface PhonePresence {
  /** Whether `name` has a phone registered at this adapter. */
  online(name: string): boolean;
  /** Whether a phone of `watcher` subscribes here to `presentity`. */
  subscribed(watcher: string, presentity: string): boolean;
  /** Send the state to every phone of `watcher` subscribed to `presentity` (NOTIFY). */
  notify(watcher: string, presentity: string, state: PresenceState): void;
}

export interface PresenceContext {
  endpoint: RpcEndpoint;
  users: LocalUsers;
  verified: VerifiedUsers;
  replay: ReplayCache;
  clock: Clock;
  random: Random;
  log: Logger;
  mode: () => SecurityMode;
  timeoutMs: number;
  phones?: PhonePresence;
  /** Where the users' state is also published (presence-records.ts); absent: direct pushes only. */
  ring?: ChordNode;
}

interface Watcher {
  adapter: NodeRef;
  sealKey: Uint8Array;
  until: number;
}

const CLOSED: PresenceState = { open: false, seq: 0 };

export class PresenceService {
  private readonly ctx: PresenceContext;
  /** Presentity side: local user -> watcher name -> where to push. */
  private readonly watchers = new Map<string, Map<string, Watcher>>();
  /** Presentity side: the state last pushed per local user, and what PUBLISH set. */
  private readonly published = new Map<string, PresenceState>();
  private readonly publications = new Map<string, { open?: boolean; note?: string; until: number }>();
  /** Watcher side: the latest verified state per presentity, and the re-WATCH timers per (watcher, presentity). */
  private readonly known = new Map<string, PresenceState>();
  private readonly rewatch = new Map<string, Timer>();
  /** When each local user's state was last written to the ring (wall ms). */
  private readonly ringAt = new Map<string, number>();
  /** The last write of each user's ring record, settled when the ring answered (see recorded). */
  private readonly writing = new Map<string, Promise<void>>();
  private tickTimer: Timer | undefined;
  readonly stats = { watches: 0, pushes: 0, received: 0, refused: 0 };

  constructor(ctx: PresenceContext) {
    this.ctx = ctx;
    this.scheduleTick();
  }

  stop(): void {
    this.tickTimer?.cancel();
    this.tickTimer = undefined;
    for (const t of this.rewatch.values()) t.cancel();
    this.rewatch.clear();
  }

  /** The last verified state of `presentity` seen here (closed when none). */
  stateOf(presentity: string): PresenceState {
    return this.known.get(presentity) ?? CLOSED;
  }

  // ------------------------------------------------------------ watcher side

  /**
   * `watcher` (a local user) wants `presentity`'s presence: WATCH at its adapter, resolves with the verified
   * state; keeps watching (WATCH again every WATCH_REFRESH_MS) while a phone of the watcher subscribes.
   * Throws the refusal (USER_UNKNOWN: no such user) when the WATCH fails.
   */
  async watch(watcher: LocalUser, presentity: string, retryMs = WATCH_RETRY_FIRST_MS): Promise<PresenceState> {
    try {
      const state = await this.ctx.verified.withUser(presentity, (u) => this.exchangeWatch(watcher, u));
      this.learn(presentity, state);
      this.keepWatching(watcher, presentity, WATCH_REFRESH_MS);
      return this.stateOf(presentity);
    } catch (e) {
      // Unreachable or not ready (a restart): try again soon, backing off; no such user: give up.
      if (isOverlayError(e, 'USER_UNKNOWN')) throw e;
      this.keepWatching(watcher, presentity, retryMs, Math.min(retryMs * 2, WATCH_REFRESH_MS));
      // Meanwhile, what the presentity's adapter last published in the ring, if it verifies.
      const fromRing = await this.readRing(presentity).catch(() => undefined);
      if (!fromRing) throw e;
      this.learn(presentity, fromRing);
      return this.stateOf(presentity);
    }
  }

  private keepWatching(watcher: LocalUser, presentity: string, inMs: number, nextRetryMs = WATCH_RETRY_FIRST_MS): void {
    const key = `${watcher.name}\u0000${presentity}`;
    this.rewatch.get(key)?.cancel();
    const timer = this.ctx.clock.setTimer(inMs, () => {
      if (this.rewatch.get(key) !== timer) return;
      this.rewatch.delete(key);
      if (!this.ctx.phones?.subscribed(watcher.name, presentity)) return;
      this.watch(watcher, presentity, nextRetryMs).then(
        (s) => this.ctx.phones?.notify(watcher.name, presentity, s),
        (e: unknown) => {
          // The phones see the presentity closed until a later WATCH gets through.
          this.ctx.log.info({ watcher: watcher.name, presentity, reason: (e as Error).message }, 'WATCH failed');
          this.ctx.phones?.notify(watcher.name, presentity, { ...this.stateOf(presentity), open: false });
        },
      );
    });
    this.rewatch.set(key, timer);
  }

  private async exchangeWatch(watcher: LocalUser, u: VerifiedUser): Promise<PresenceState> {
    const presentity = u.bundle.name;
    const body: Omit<WatchMsg, 'sig'> = {
      t: 'WATCH',
      name: watcher.name,
      to: presentity,
      callId: Buffer.from(this.ctx.random.bytes(8)).toString('hex'),
      nonce: this.ctx.random.bytes(16),
      ts: this.ctx.clock.wallNow(),
      sip: new TextEncoder().encode(String(WATCH_TTL_MS / 1000)),
    };
    const m: WatchMsg = { ...body, sig: watcher.signer.sign(DOMAIN.watch, callTbs(body)) };
    const sealKey = this.ctx.mode() === 'protected' ? u.bundle.sealKey : undefined;
    const a = await requestAdapter(this.ctx, u.adapter, m, sealKey, watcher);
    if (a.t !== 'PRESENCE') refuse('VERIFICATION_FAILED', `unexpected ${a.t} from ${presentity}'s adapter`);
    if (a.name !== presentity || a.to !== watcher.name || a.callId !== m.callId)
      refuse('VERIFICATION_FAILED', 'PRESENCE names another watch');
    if (!bytesEqual(a.nonce, m.nonce)) refuse('IDENTITY_REPLAY', 'PRESENCE does not answer this WATCH');
    if (!u.key.verify(DOMAIN.presence, callTbs(a), a.sig))
      refuse('IDENTITY_BAD_SIGNATURE', `PRESENCE is not signed by ${presentity}`);
    const state = decodePresenceState(a.sip);
    if (!state.ok) refuse('VERIFICATION_FAILED', `bad presence state: ${state.error}`);
    this.stats.watches++;
    return state.value;
  }

  /** `presentity`'s state as published in the ring, checked with the key rebuilt from the ring. */
  private readRing(presentity: string): Promise<PresenceState | undefined> {
    return this.ctx.ring
      ? readPresenceRecord(this.ctx.ring, this.ctx.verified, presentity)
      : Promise.resolve(undefined);
  }

  /** Sign `name`'s state into the ring (short TTL; signed again before it lapses, see scheduleTick). */
  private publishRecord(name: string, state: PresenceState): void {
    const user = this.ctx.users.get(name);
    if (!this.ctx.ring || !user?.cert) return;
    const at = this.ctx.clock.wallNow();
    this.ringAt.set(name, at);
    const w = writePresenceRecord(this.ctx.ring, user, state, at).then(
      (why) => {
        if (why) this.ctx.log.debug({ user: name, reason: why }, 'presence record not stored');
      },
      () => {},
    );
    this.writing.set(name, w);
    w.then(() => {
      if (this.writing.get(name) === w) this.writing.delete(name);
    });
  }

  /** Settles once the last ring write of `name`'s state has been answered (stored or refused). */
  recorded(name: string): Promise<void> {
    return this.writing.get(name) ?? Promise.resolve();
  }

  /** A newer verified state replaces the one known (a replayed older one never does). */
  private learn(presentity: string, s: PresenceState): boolean {
    const have = this.known.get(presentity);
    if (have && have.seq >= s.seq) return false;
    this.known.set(presentity, s);
    return true;
  }

  // ------------------------------------------------------------ presentity side

  /** A PUBLISH (RFC 3903) from `name`'s phone: its status and note for `expiresS` (0 removes them). */
  publish(name: string, status: { open?: boolean; note?: string } | undefined, expiresS: number): void {
    const until = this.ctx.clock.now() + expiresS * 1000;
    const had = this.publications.get(name);
    // A PUBLISH without a body refreshes the publication it names (RFC 3903 4.3).
    if (expiresS === 0) this.publications.delete(name);
    else if (status) this.publications.set(name, { ...status, until });
    else if (had) had.until = until;
    this.changed(name);
  }

  /** The state of local user `name` now: a registered phone and not published closed; the published note. */
  private current(name: string): Omit<PresenceState, 'seq'> {
    const p = this.publications.get(name);
    const pub = p && p.until > this.ctx.clock.now() ? p : undefined;
    if (p && !pub) this.publications.delete(name);
    const online = this.ctx.users.get(name) !== undefined && (this.ctx.phones?.online(name) ?? false);
    return { open: online && (pub?.open ?? true), ...(online && pub?.note ? { note: pub.note } : {}) };
  }

  /** The state to sign for `name`: the last one if nothing changed, else a new one with a larger seq. */
  private stateFor(name: string): { state: PresenceState; changed: boolean } {
    const now = this.current(name);
    const last = this.published.get(name);
    if (last && last.open === now.open && last.note === now.note) return { state: last, changed: false };
    // Wall-clock based, so the order survives a restart of this adapter.
    const seq = Math.max((last?.seq ?? 0) + 1, this.ctx.clock.wallNow());
    const state = { ...now, seq };
    this.published.set(name, state);
    this.publishRecord(name, state);
    return { state, changed: last !== undefined };
  }

  /** `name`'s state may have changed (REGISTER, un-REGISTER, PUBLISH): push it to the watchers if it did. */
  changed(name: string): void {
    const { state, changed } = this.stateFor(name);
    if (changed) this.push(name, state);
  }

  private scheduleTick(): void {
    this.tickTimer = this.ctx.clock.setTimer(TICK_MS, () => {
      const now = this.ctx.clock.now();
      for (const [name, ws] of this.watchers) {
        for (const [w, x] of ws) if (x.until <= now) ws.delete(w);
        if (ws.size === 0) this.watchers.delete(name);
        else this.changed(name); // a registration that lapsed shows here
      }
      // The ring copy is signed again before its short TTL runs out.
      const wall = this.ctx.clock.wallNow();
      for (const [name, state] of this.published)
        if (this.ctx.users.get(name) && wall - (this.ringAt.get(name) ?? 0) > PRESENCE_TTL_MS / 2)
          this.publishRecord(name, state);
      this.scheduleTick();
    });
  }

  private push(name: string, state: PresenceState): void {
    const user = this.ctx.users.get(name);
    const ws = this.watchers.get(name);
    if (!user || !ws) return;
    for (const [watcher, w] of ws) {
      const body: Omit<PresenceMsg, 'sig'> = {
        t: 'PRESENCE',
        name,
        to: watcher,
        callId: Buffer.from(this.ctx.random.bytes(8)).toString('hex'),
        nonce: this.ctx.random.bytes(16),
        ts: this.ctx.clock.wallNow(),
        sip: encodePresenceState(state),
      };
      const m: PresenceMsg = { ...body, sig: user.signer.sign(DOMAIN.presence, callTbs(body)) };
      this.stats.pushes++;
      const sealKey = this.ctx.mode() === 'protected' ? w.sealKey : undefined;
      requestAdapter(this.ctx, w.adapter, m, sealKey, user).catch((e: unknown) => {
        // The watcher's adapter no longer wants it (no such user or subscription there): stop pushing.
        if (isOverlayError(e) && e.detail?.answered === true) ws.delete(watcher);
        this.ctx.log.debug({ user: name, watcher, reason: (e as Error).message }, 'PRESENCE push failed');
      });
    }
  }

  // ------------------------------------------------------------ answering other adapters

  /** Answer a WATCH (we hold the presentity) or a PRESENCE push (we hold the watcher). Never throws. */
  async answer(opened: Opened, from: Caller): Promise<Uint8Array> {
    const { d, sealedTo } = opened;
    if (!d.ok || (d.value.t !== 'WATCH' && d.value.t !== 'PRESENCE'))
      return encodeMessage({ t: 'ERROR', code: 'RPC_MALFORMED', reason: d.ok ? `unexpected ${d.value.t}` : d.error });
    const m = d.value;
    let peer: VerifiedUser | undefined;
    try {
      const self = this.ctx.users.get(m.to) ?? refuse('USER_UNKNOWN', `${m.to} is not registered at this adapter`);
      if (sealedTo && sealedTo.name !== self.name) refuse('VERIFICATION_FAILED', 'sealed to another user');
      const scope = `${m.t.toLowerCase()}:${m.name}`;
      const early = this.ctx.replay.peek(m.nonce, m.ts, scope);
      if (!early.ok) refuse(early.code, early.reason);
      if (m.t === 'PRESENCE' && !this.ctx.phones?.subscribed(m.to, m.name))
        refuse('RPC_REFUSED', `${m.to} does not watch ${m.name} here`);
      const state = m.t === 'PRESENCE' ? decodePresenceState(m.sip) : undefined;
      if (state && !state.ok) refuse('RPC_MALFORMED', state.error);
      const domain = m.t === 'WATCH' ? DOMAIN.watch : DOMAIN.presence;
      peer = await this.ctx.verified.verifySigned(m.name, (u) => u.key.verify(domain, callTbs(m), m.sig));
      const fresh = this.ctx.replay.check(m.nonce, m.ts, scope);
      if (!fresh.ok) refuse(fresh.code, fresh.reason);
      const reply =
        m.t === 'WATCH' ? this.acceptWatch(self, m, peer) : this.acceptPresence(self, m as PresenceMsg, state);
      const sealTo = sealedTo || this.ctx.mode() === 'protected' ? peer.bundle.sealKey : undefined;
      this.ctx.log.debug({ kind: m.t, from: m.name, to: m.to, via: from.addr }, `verified ${m.name}'s ${m.t}`);
      return sealTo ? sealFor(sealTo, reply) : encodeMessage(reply);
    } catch (e) {
      this.stats.refused++;
      const code: ErrorCode = isOverlayError(e) ? e.code : 'BAD_CONFIG';
      const reason = isOverlayError(e) ? e.message : 'internal error';
      this.ctx.log.info({ kind: m.t, from: m.name, to: m.to, code, reason }, `SECP2PSIP ${m.t} refused`);
      const err = { t: 'ERROR' as const, code, reason };
      return sealedTo && peer ? sealFor(peer.bundle.sealKey, err) : encodeMessage(err);
    }
  }

  private acceptWatch(self: LocalUser, m: WatchMsg, watcher: VerifiedUser): PresenceMsg {
    const asked = Number(new TextDecoder().decode(m.sip));
    const ttl = Number.isFinite(asked) && asked > 0 ? Math.min(asked * 1000, WATCH_TTL_MS) : WATCH_TTL_MS;
    let ws = this.watchers.get(self.name);
    if (!ws) this.watchers.set(self.name, (ws = new Map()));
    if (!ws.has(m.name) && ws.size >= MAX_WATCHERS) refuse('RPC_TOO_MANY_IN_FLIGHT', 'too many watchers');
    ws.set(m.name, { adapter: watcher.adapter, sealKey: watcher.bundle.sealKey, until: this.ctx.clock.now() + ttl });
    const { state } = this.stateFor(self.name);
    const body: Omit<PresenceMsg, 'sig'> = {
      t: 'PRESENCE',
      name: self.name,
      to: m.name,
      callId: m.callId,
      nonce: m.nonce,
      ts: this.ctx.clock.wallNow(),
      sip: encodePresenceState(state),
    };
    return { ...body, sig: self.signer.sign(DOMAIN.presence, callTbs(body)) };
  }

  private acceptPresence(
    self: LocalUser,
    m: PresenceMsg,
    state: ReturnType<typeof decodePresenceState> | undefined,
  ): DeliveredMsg {
    this.stats.received++;
    if (state?.ok && this.learn(m.name, state.value)) this.ctx.phones?.notify(self.name, m.name, state.value);
    const body: Omit<DeliveredMsg, 'sig'> = {
      t: 'DELIVERED',
      name: self.name,
      to: m.name,
      callId: m.callId,
      nonce: m.nonce,
      ts: this.ctx.clock.wallNow(),
      sip: new TextEncoder().encode('1'),
    };
    return { ...body, sig: self.signer.sign(DOMAIN.delivered, callTbs(body)) };
  }
}
