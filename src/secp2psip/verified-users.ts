/**
 * The other party of a call, verified (seed 000 IV.3 "Public Key
 * Reconstruction", plus trust on first use): the caller's adapter verifies
 * the callee, the callee's adapter the caller, both through here.
 *
 * What was verified is kept for `cacheMs`: a later call reuses the key and
 * location instead of fetching n pieces again. Nothing unverified enters the
 * cache, and a cached entry is dropped and looked up afresh as soon as it
 * fails (`forget`): the callee's adapter does not know the user any more (the
 * user moved) or a signature does not verify with the cached key (the user
 * re-registered a new key).
 */
import { warmView } from '../dht/chord/direct-fetch.ts';
import { isOverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { refuse } from './call-checks.ts';
import { type LookupContext, lookupUser, type OnAdapter, RebuildMemo, type VerifiedUser } from './key-lookup.ts';
import type { UserKeyBundle } from './messages.ts';
import type { TrustStore } from './trust-store.ts';

const CACHE_MAX = 10_000;

/** The name's current key at its authoritative bootstrap (the TOFU re-registration check). */
export type Whois = (name: string) => Promise<UserKeyBundle | undefined>;

export class VerifiedUsers {
  readonly lookup: LookupContext;
  readonly trust: TrustStore;
  /** Users verified through the ring recently; `cacheMs` 0: every call looks up. */
  readonly cache = new Map<string, { user: VerifiedUser; until: number }>();
  cacheMs: number;
  private readonly whois: Whois;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private readonly log: Logger;

  constructor(
    c: {
      lookup: LookupContext;
      trust: TrustStore;
      whois: Whois;
      now: () => number;
      wallNow: () => number;
      log: Logger;
    },
    cacheMs = 0,
  ) {
    this.lookup = c.lookup;
    // Repeated rebuilds of identical fetched bytes are recognised (key-lookup.ts RebuildMemo); the ring is still read.
    this.lookup.memo ??= new RebuildMemo();
    this.trust = c.trust;
    this.whois = c.whois;
    this.now = c.now;
    this.wallNow = c.wallNow;
    this.log = c.log;
    this.cacheMs = cacheMs;
  }

  private warming?: Promise<void>;

  /**
   * Make the first call as fast as later ones (once; never rejects): start the ring view the direct reads
   * pick holders from, so that it fills from the ring's maintenance before the first call (direct-fetch.ts
   * warmView). An adapter runs it when its first user registers; one that never has a user (the simulator's
   * thousands of nodes) keeps the small dormant view.
   */
  prewarm(): Promise<void> {
    this.warming ??= warmView(this.lookup.ring).catch((e: unknown) => {
      this.log.debug({ err: (e as Error).message }, 'ring view not warmed');
    });
    return this.warming;
  }

  /** Rebuild, verify and apply TOFU; `fresh`: skip the cache and confirm every owner. */
  async verify(name: string, fresh = false, onAdapter?: OnAdapter): Promise<VerifiedUser> {
    const now = this.now();
    if (!fresh && this.cacheMs) {
      const hit = this.cache.get(name);
      if (hit && hit.until > now) return hit.user;
      if (hit) this.cache.delete(name);
    }
    // First without owner confirmation (ring-fetch.ts); a retry, or any doubt about what came back, confirms.
    let u: VerifiedUser;
    try {
      u = await (fresh ? lookupUser(this.lookup, name, true, onAdapter) : this.read(name, onAdapter));
    } catch (e) {
      if (fresh || !isOverlayError(e) || e.code === 'USER_UNKNOWN') throw e;
      u = await lookupUser(this.lookup, name, true);
    }
    if (u.unconfirmed && this.trust.check(u.bundle) === 'mismatch') u = await lookupUser(this.lookup, name, true);
    const verdict = this.trust.check(u.bundle);
    if (verdict === 'mismatch') {
      const auth = await this.whois(name).catch(() => undefined);
      if (!auth || !this.trust.reRegistered(u.bundle, auth)) {
        this.log.warn({ user: name }, 'key differs from the one trusted before; refusing');
        refuse('VERIFICATION_FAILED', `key of ${name} changed since first use`);
      }
      this.log.info({ user: name }, 'bootstrap confirms a re-registration; trusting the new key');
    }
    this.trust.accept(u.bundle, this.wallNow());
    if (this.cacheMs) {
      if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(name, { user: u, until: now + this.cacheMs });
    }
    return u;
  }

  /** Ring reads of a user under way, per name. */
  private readonly reading = new Map<string, number>();
  /** Per name, the next read: not sent yet, shared by every call that asks for the user until it is. */
  private readonly next = new Map<string, { tell: OnAdapter[]; user: Promise<VerifiedUser> }>();
  /** Reads shared by more than one call (each such call counts once). */
  shared = 0;

  /**
   * One unconfirmed read of `name` through the ring for this call, shared only with calls that asked before
   * it was sent. With no read of the user under way it is sent at once; while one is, the read that follows
   * is sent on the next turn of the event loop and every call asking meanwhile joins it. A read started
   * before a call asked is never shared with that call, so every call's verdict still rests on records read
   * from the ring after it arrived, exactly as if it had read them itself (docs/design.md, "Calls").
   */
  private read(name: string, onAdapter?: OnAdapter): Promise<VerifiedUser> {
    const pending = this.next.get(name);
    if (pending) {
      if (onAdapter) pending.tell.push(onAdapter);
      this.shared++;
      return pending.user;
    }
    if (!this.reading.get(name)) return this.send(name, onAdapter ? [onAdapter] : []);
    const tell = onAdapter ? [onAdapter] : [];
    const user = new Promise<VerifiedUser>((resolve, reject) => {
      setImmediate(() => {
        this.next.delete(name);
        this.send(name, tell).then(resolve, reject);
      });
    });
    this.next.set(name, { tell, user });
    return user;
  }

  private send(name: string, tell: OnAdapter[]): Promise<VerifiedUser> {
    this.reading.set(name, (this.reading.get(name) ?? 0) + 1);
    const onAdapter: OnAdapter | undefined =
      tell.length === 0
        ? undefined
        : (a) => {
            for (const f of tell) f(a);
          };
    return lookupUser(this.lookup, name, false, onAdapter).finally(() => {
      const n = (this.reading.get(name) ?? 1) - 1;
      if (n > 0) this.reading.set(name, n);
      else this.reading.delete(name);
    });
  }

  /** May `u` be stale: it came from the cache, or from an owner that was not confirmed? */
  inDoubt(name: string, u: VerifiedUser): boolean {
    return this.cache.get(name)?.user === u || u.unconfirmed;
  }

  /**
   * `attempt` with `name` verified; when it fails and the user may be stale (cached, or from an unconfirmed
   * owner: moved or re-registered since), once more with the user looked up afresh, owners confirmed. A timeout
   * is not retried. The caller's side of a call and the sender's side of a message both go through here.
   */
  async withUser<T>(name: string, attempt: (u: VerifiedUser) => Promise<T>, first?: VerifiedUser): Promise<T> {
    const u = first ?? (await this.verify(name));
    try {
      return await attempt(u);
    } catch (e) {
      if (!this.inDoubt(name, u) || isOverlayError(e, 'TIMEOUT')) throw e;
      this.forget(name);
      return attempt(await this.verify(name, true));
    }
  }

  /**
   * The user `name` whose key passes `signed` (a signature check, maybe off the thread): verified through the ring, and looked up once
   * more, confirmed, when a possibly stale key fails. Refuses IDENTITY_BAD_SIGNATURE otherwise. The callee's side
   * of a call and the recipient's side of a message both go through here.
   */
  async verifySigned(name: string, signed: (u: VerifiedUser) => boolean | Promise<boolean>): Promise<VerifiedUser> {
    let u = await this.verify(name);
    // Seed IV.3 "SecP2PSIP INVITE Verification": the SignedHash must verify with the rebuilt key.
    let good = await signed(u);
    if (!good && this.inDoubt(name, u)) {
      this.forget(name);
      u = await this.verify(name, true);
      good = await signed(u);
    }
    if (!good) refuse('IDENTITY_BAD_SIGNATURE', `not signed by ${name}`);
    return u;
  }

  /** Drop a cached user that just failed: the next call looks it up again. */
  forget(name: string): void {
    this.cache.delete(name);
  }
}
