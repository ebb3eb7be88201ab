/**
 * SecP2PSIP session establishment, seed 000 IV.3 (Figure 3), both sides.
 *
 * Caller side (AdapterA, `placeCall`): contact lookup and key rebuild of the
 * callee, trust on first use, SECP2PSIP INVITE (Table 2) signed by the caller
 * and, in protected mode, sealed to the callee; then verification of the
 * SECP2PSIP REDIRECT (Table 3) and of the 302 inside it against the phone's
 * own INVITE. Only then is the 302 handed to the phone.
 *
 * Callee side (AdapterB, `answerInvite`): key rebuild of the caller,
 * signature and freshness check (timestamp window + nonce cache), the 302
 * built from the phone INVITE (RFC 3261 8.2.6) with the callee's registered
 * contact, signed REDIRECT echoing the INVITE's nonce.
 *
 * What is signed (messages.ts `callTbs`): kind, sender, receiver, Call-ID,
 * nonce, timestamp, SHA-256 of the SIP bytes.
 *
 * Pipelining (signed mode, callee looked up through the ring): the caller
 * sends the signed INVITE as soon as the callee's `Username` record arrives
 * (its adapter admitted by a known bootstrap), while the pieces are still
 * being fetched and the key rebuilt; the callee's adapter rebuilds the
 * caller's key meanwhile, so the two sides' ring work overlaps. The REDIRECT
 * is taken only if the key then rebuilt verifies the `Username` record, the
 * adapter it names is the one the INVITE went to, and the REDIRECT verifies
 * against that key; else it is dropped and, where the rebuilt record names
 * another adapter, the INVITE goes there. What this gives up: a stale
 * `Username` record (a bootstrap-signed older location of the same user; a
 * forged one is refused by its envelope signature) can make the caller
 * send its signed, not sealed, INVITE to a wrong adapter before the
 * mismatch shows; it learns what any node on a signed-mode path sees, and
 * nothing it answers is trusted. Protected mode seals the INVITE to the
 * callee's key, so it waits for the rebuild.
 */
import type { Identity } from '../identity/identity.ts';
import { open, seal } from '../identity/seal.ts';
import type { ReplayCache } from '../identity/replay-cache.ts';
import type { UserSigner } from '../identity/user-key.ts';
import type { Caller, NodeRef, RpcEndpoint } from '../rpc/types.ts';
import { getHeader, type SipRequest, type SipResponse } from '../sip/message.ts';
import { buildResponse } from '../sip/response.ts';
import { serialize } from '../sip/serializer.ts';
import type { Clock } from '../util/clock.ts';
import { type ErrorCode, isOverlayError, OverlayError } from '../util/errors.ts';
import { sipStatusOf } from '../sip/error-status.ts';
import type { Logger } from '../util/log.ts';
import type { Random } from '../util/random.ts';
import { checkInviteSip, checkRedirect, refuse } from './call-checks.ts';
import { type LookupContext, lookupUser, type OnAdapter, type VerifiedUser } from './key-lookup.ts';
import {
  callTbs,
  DOMAIN,
  decodeMessage,
  encodeMessage,
  type InviteMsg,
  NAME_RE,
  type RedirectMsg,
  type SecP2PSipMessage,
  type UserKeyBundle,
} from './messages.ts';
import type { TrustStore } from './trust-store.ts';

export type SecurityMode = 'signed' | 'protected';

/** A user registered through this adapter: signs with `signer`, opens sealed messages with `kem`. */
export interface LocalUser {
  name: string;
  signer: UserSigner;
  kem: Identity;
  bundle: UserKeyBundle;
}

export interface FlowContext {
  endpoint: RpcEndpoint;
  lookup: LookupContext;
  trust: TrustStore;
  replay: ReplayCache;
  clock: Clock;
  random: Random;
  log: Logger;
  mode: SecurityMode;
  /** Time allowed for the SECP2PSIP INVITE/REDIRECT exchange (ms). */
  timeoutMs: number;
  localUser(name: string): LocalUser | undefined;
  /** Every local user (to try sealed messages against). */
  localUsers(): Iterable<LocalUser>;
  /** The callee's registered phone contacts, as Contact header values. */
  contactsOf(name: string): string[];
  /** The name's current key at its authoritative bootstrap (TOFU re-registration check). */
  whois(name: string): Promise<UserKeyBundle | undefined>;
  /** Told about every successful verification (optional). */
  onEvent?: (e: FlowEvent) => void;
  /** Users verified through the ring recently (see `verifiedUser`); absent or `cacheMs` 0: every call looks up. */
  cache?: Map<string, { user: VerifiedUser; until: number }>;
  cacheMs?: number;
  /** Signed mode: send the INVITE before the callee key is rebuilt (see the module comment; default true). */
  pipeline?: boolean;
  /** Counts a SECP2PSIP request that did not decode as an INVITE (answered RPC_MALFORMED). */
  onMalformed?: () => void;
}

const CACHE_MAX = 10_000;

/** What the demo shows of a call: who verified whom, in which mode. */
export interface FlowEvent {
  kind: 'invite-verified' | 'redirect-verified';
  /** The user whose signature was checked. */
  verified: string;
  /** The local user on whose behalf it was checked. */
  by: string;
  mode: SecurityMode;
  /** Pieces that disagreed with the rebuilt key (robust rebuilding corrected them). */
  badPieces: number;
}

export type CallOutcome =
  | { ok: true; response: SipResponse; callee: VerifiedUser; protected: boolean }
  | { ok: false; status: number; reason: string; code: ErrorCode };

function outcomeOf(e: unknown): CallOutcome {
  if (isOverlayError(e)) {
    const reason = e.message.length > 120 ? `${e.message.slice(0, 117)}...` : e.message;
    return { ok: false, status: sipStatusOf(e), reason: sipReason(reason), code: e.code };
  }
  return { ok: false, status: 500, reason: 'Server Internal Error', code: 'BAD_CONFIG' };
}

/** Reason phrases are TEXT-UTF8 without CR/LF (RFC 3261 25.1). */
function sipReason(s: string): string {
  return s.replace(/[\r\n\t]+/g, ' ').trim();
}

/**
 * Rebuild, verify and apply trust on first use (seed IV.3 "Public Key
 * Reconstruction", plus TOFU). What was verified is kept for `cacheMs`: a
 * later call reuses the key and location instead of fetching n pieces again.
 * Nothing unverified enters the cache, and a cached entry is dropped and
 * looked up afresh as soon as it fails: the callee's adapter does not know
 * the user any more (the user moved) or a signature does not verify with the
 * cached key (the user re-registered a new key).
 */
export async function verifiedUser(
  ctx: FlowContext,
  name: string,
  fresh = false,
  onAdapter?: OnAdapter,
): Promise<VerifiedUser> {
  const now = ctx.clock.now();
  if (!fresh && ctx.cache && ctx.cacheMs) {
    const hit = ctx.cache.get(name);
    if (hit && hit.until > now) return hit.user;
    if (hit) ctx.cache.delete(name);
  }
  // First without owner confirmation (ring-fetch.ts); a retry, or any doubt about what came back, confirms.
  let u: VerifiedUser;
  try {
    u = await lookupUser(ctx.lookup, name, fresh, onAdapter);
  } catch (e) {
    if (fresh || !isOverlayError(e) || e.code === 'USER_UNKNOWN') throw e;
    u = await lookupUser(ctx.lookup, name, true);
  }
  if (u.unconfirmed && ctx.trust.check(u.bundle) === 'mismatch') u = await lookupUser(ctx.lookup, name, true);
  const verdict = ctx.trust.check(u.bundle);
  if (verdict === 'mismatch') {
    const auth = await ctx.whois(name).catch(() => undefined);
    if (!auth || !ctx.trust.reRegistered(u.bundle, auth)) {
      ctx.log.warn({ user: name }, 'key differs from the one trusted before; refusing');
      refuse('VERIFICATION_FAILED', `key of ${name} changed since first use`);
    }
    ctx.log.info({ user: name }, 'bootstrap confirms a re-registration; trusting the new key');
  }
  ctx.trust.accept(u.bundle, ctx.clock.wallNow());
  if (ctx.cache && ctx.cacheMs) {
    if (ctx.cache.size >= CACHE_MAX) ctx.cache.delete(ctx.cache.keys().next().value as string);
    ctx.cache.set(name, { user: u, until: now + ctx.cacheMs });
  }
  return u;
}

function isCached(ctx: FlowContext, name: string, u: VerifiedUser): boolean {
  return ctx.cache?.get(name)?.user === u;
}

function sealFor(sealKey: Uint8Array, m: SecP2PSipMessage): Uint8Array {
  return encodeMessage({ t: 'SEALED', box: seal(sealKey, encodeMessage(m)) });
}

/** Caller side: from the phone's INVITE to a verified 302, or a SIP error status. */
export async function placeCall(
  ctx: FlowContext,
  req: SipRequest,
  caller: LocalUser,
  calleeName: string,
  isCancelled: () => boolean = () => false,
): Promise<CallOutcome> {
  try {
    if (!NAME_RE.test(calleeName)) refuse('USER_UNKNOWN', calleeName);
    const callId = getHeader(req, 'Call-ID') ?? refuse('SIP_MALFORMED', 'no Call-ID');
    // Signed mode: INVITE on its way as soon as the callee's adapter is known (see the module comment).
    let early: { to: NodeRef; answer: Promise<Exchanged> } | undefined;
    const sendEarly: OnAdapter | undefined =
      ctx.mode === 'signed' && ctx.pipeline !== false
        ? (to) => {
            if (early || isCancelled()) return;
            const answer = exchangeInvite(ctx, req, caller, calleeName, to, undefined, callId);
            answer.catch(() => {});
            early = { to, answer };
          }
        : undefined;
    let callee = await verifiedUser(ctx, calleeName, false, sendEarly);
    if (isCancelled()) refuse('TIMEOUT', 'cancelled');
    const attempt = async (u: VerifiedUser) => {
      const sealKey = ctx.mode === 'protected' ? u.bundle.sealKey : undefined;
      const sent = early && sameNode(early.to, u.adapter) ? early.answer : undefined;
      early = undefined;
      const out = await (sent ?? exchangeInvite(ctx, req, caller, calleeName, u.adapter, sealKey, callId));
      return checkRedirect(ctx.replay, out.m, out.invite, u.key, req);
    };
    let response: SipResponse;
    try {
      response = await attempt(callee);
    } catch (e) {
      // A cached or unconfirmed location or key may be stale (moved, re-registered): look up once more,
      // confirmed, and try again.
      const doubt = isCached(ctx, calleeName, callee) || callee.unconfirmed;
      if (!doubt || isCancelled() || isOverlayError(e, 'TIMEOUT')) throw e;
      ctx.cache?.delete(calleeName);
      callee = await verifiedUser(ctx, calleeName, true);
      response = await attempt(callee);
    }
    ctx.log.info(
      { caller: caller.name, callee: calleeName, mode: ctx.mode, badPieces: callee.pieces.bad },
      `verified ${calleeName}'s REDIRECT; sending 302`,
    );
    ctx.onEvent?.({
      kind: 'redirect-verified',
      verified: calleeName,
      by: caller.name,
      mode: ctx.mode,
      badPieces: callee.pieces.bad.length,
    });
    return { ok: true, response, callee, protected: ctx.mode === 'protected' };
  } catch (e) {
    const out = outcomeOf(e);
    if (!out.ok)
      ctx.log.info({ caller: caller.name, callee: calleeName, status: out.status, reason: out.reason }, 'call refused');
    return out;
  }
}

interface Exchanged {
  m: RedirectMsg;
  invite: InviteMsg;
}

function sameNode(a: NodeRef, b: NodeRef): boolean {
  return a.id === b.id && a.addr === b.addr && Buffer.from(a.key).equals(Buffer.from(b.key));
}

/**
 * SECP2PSIP INVITE (Table 2) to the callee's adapter, sealed to `sealKey`
 * when given; resolves with its REDIRECT (Table 3), not yet verified.
 */
async function exchangeInvite(
  ctx: FlowContext,
  req: SipRequest,
  caller: LocalUser,
  calleeName: string,
  adapter: NodeRef,
  sealKey: Uint8Array | undefined,
  callId: string,
): Promise<Exchanged> {
  const sip = new Uint8Array(serialize(req));
  const nonce = ctx.random.bytes(16);
  const body: Omit<InviteMsg, 'sig'> = {
    t: 'INVITE',
    name: caller.name,
    to: calleeName,
    callId,
    nonce,
    ts: ctx.clock.wallNow(),
    sip,
  };
  const invite: InviteMsg = { ...body, sig: caller.signer.sign(DOMAIN.invite, callTbs(body)) };
  const payload = sealKey ? sealFor(sealKey, invite) : encodeMessage(invite);
  let answer: unknown;
  try {
    answer = await ctx.endpoint.request(adapter, 'secp2psip', payload, { timeoutMs: ctx.timeoutMs });
  } catch (e) {
    if (isOverlayError(e, 'RPC_TIMEOUT')) refuse('TIMEOUT', `adapter of ${calleeName} did not answer`);
    refuse('CALLEE_UNREACHABLE', `adapter of ${calleeName}: ${(e as Error).message}`);
  }
  let d = decodeMessage(answer);
  if (d.ok && d.value.t === 'SEALED') {
    const opened = open(caller.kem, d.value.box);
    d = opened.ok ? decodeMessage(opened.value) : { ok: false, error: opened.error };
  }
  if (!d.ok) refuse('VERIFICATION_FAILED', `bad answer from ${calleeName}'s adapter`);
  const m = d.value;
  if (m.t === 'ERROR') throw new OverlayError(m.code, `${calleeName}'s adapter: ${m.reason}`);
  if (m.t !== 'REDIRECT') refuse('VERIFICATION_FAILED', `unexpected ${m.t} from ${calleeName}'s adapter`);
  return { m, invite };
}

/** Callee side: answer one SECP2PSIP INVITE (plain or sealed). Never throws: refusals are ERROR messages. */
export async function answerInvite(ctx: FlowContext, payload: unknown, from: Caller): Promise<Uint8Array> {
  let d = decodeMessage(payload);
  let sealedTo: LocalUser | undefined;
  if (d.ok && d.value.t === 'SEALED') {
    const box = d.value.box;
    d = { ok: false, error: 'sealed to no user of this adapter' };
    for (const u of ctx.localUsers()) {
      const o = open(u.kem, box);
      if (o.ok) {
        d = decodeMessage(o.value);
        sealedTo = u;
        break;
      }
    }
  }
  if (!d.ok || d.value.t !== 'INVITE') {
    ctx.onMalformed?.();
    const reason = d.ok ? `unexpected ${d.value.t}` : d.error;
    return encodeMessage({ t: 'ERROR', code: 'RPC_MALFORMED', reason });
  }
  const m = d.value;
  let callerUser: VerifiedUser | undefined;
  try {
    const callee = ctx.localUser(m.to) ?? refuse('USER_UNKNOWN', `${m.to} is not registered at this adapter`);
    if (sealedTo && sealedTo.name !== callee.name) refuse('VERIFICATION_FAILED', 'sealed to another user');
    callerUser = await verifiedUser(ctx, m.name);
    // Seed IV.3 "SecP2PSIP INVITE Verification": the SignedHash must verify with the rebuilt caller key.
    let signed = callerUser.key.verify(DOMAIN.invite, callTbs(m), m.sig);
    if (!signed && (isCached(ctx, m.name, callerUser) || callerUser.unconfirmed)) {
      ctx.cache?.delete(m.name);
      callerUser = await verifiedUser(ctx, m.name, true);
      signed = callerUser.key.verify(DOMAIN.invite, callTbs(m), m.sig);
    }
    if (!signed) refuse('IDENTITY_BAD_SIGNATURE', `INVITE is not signed by ${m.name}`);
    const fresh = ctx.replay.check(m.nonce, m.ts, `invite:${m.name}`);
    if (!fresh.ok) refuse(fresh.code, fresh.reason);
    const sip = checkInviteSip(m);
    const contacts = ctx.contactsOf(callee.name);
    if (contacts.length === 0) refuse('CALLEE_UNREACHABLE', `${callee.name}'s phone is not registered`);
    // Seed Table 3: a 302 built from the INVITE (RFC 3261 8.2.6), Contact = the callee's own phone.
    const resp = buildResponse(sip, 302, 'Moved Temporarily', {
      headers: contacts.map((value) => ({ name: 'Contact', value })),
    });
    const body: Omit<RedirectMsg, 'sig'> = {
      t: 'REDIRECT',
      name: callee.name,
      to: m.name,
      callId: m.callId,
      nonce: m.nonce,
      ts: ctx.clock.wallNow(),
      sip: new Uint8Array(serialize(resp)),
    };
    const redirect: RedirectMsg = { ...body, sig: callee.signer.sign(DOMAIN.redirect, callTbs(body)) };
    ctx.log.info(
      { caller: m.name, callee: callee.name, sealed: sealedTo !== undefined, from: from.addr },
      `verified ${m.name}'s INVITE; answering REDIRECT`,
    );
    ctx.onEvent?.({
      kind: 'invite-verified',
      verified: m.name,
      by: callee.name,
      mode: sealedTo ? 'protected' : 'signed',
      badPieces: callerUser.pieces.bad.length,
    });
    return sealedTo || ctx.mode === 'protected'
      ? sealFor(callerUser.bundle.sealKey, redirect)
      : encodeMessage(redirect);
  } catch (e) {
    const code: ErrorCode = isOverlayError(e) ? e.code : 'BAD_CONFIG';
    const reason = isOverlayError(e) ? e.message : 'internal error';
    ctx.log.info({ caller: m.name, callee: m.to, code, reason }, 'SECP2PSIP INVITE refused');
    const err = encodeMessage({ t: 'ERROR', code, reason });
    // A refusal is sealed too when we could rebuild the caller's key, so observers learn nothing from it.
    return sealedTo && callerUser ? encodeMessage({ t: 'SEALED', box: seal(callerUser.bundle.sealKey, err) }) : err;
  }
}
