/**
 * SecP2PSIP session establishment, seed 000 IV.3 (Figure 3), the callee's
 * side (AdapterB): one SECP2PSIP INVITE (plain or sealed) in, one REDIRECT
 * or ERROR out. Key rebuild of the caller (verified-users.ts), signature and
 * freshness check (timestamp window + nonce cache), the 302 built from the
 * phone INVITE (RFC 3261 8.2.6) with the callee's registered contacts (the
 * LocalPhones port), signed REDIRECT echoing the INVITE's nonce. The
 * caller's side is caller.ts.
 *
 * Cost before trust: a request is checked in order of cost, so junk is
 * refused before the expensive steps. A sealed INVITE is opened only with
 * the local user its recipient hint names (identity/seal.ts recipientHint),
 * never tried against every user; then the callee must be local, the
 * timestamp inside the window and the nonce unseen (ReplayCache.peek), and
 * the SIP request consistent with the signed fields, all before the ring
 * lookup that rebuilds the caller's key; the nonce is spent only once the
 * signature verified.
 *
 * The hint and protected mode's privacy: the hint is an HMAC keyed by the
 * recipient's public sealing key over the message's fresh encapsulated key.
 * Without that key it is a random-looking string, unlinkable between
 * messages. Whoever holds the key (it is public to ring members, who can
 * rebuild it from its pieces) can test "is this to bob?", but such a node
 * already learns more from where the message goes: it is sent to the
 * callee's adapter, and the ring's location records map each user to its
 * adapter, so with one user per adapter the callee is known anyway. What the
 * hint adds is which of several users of one adapter is called; an adapter
 * key (one X25519 agreement per message) would hide that too.
 */
import type { ReplayCache } from '../identity/replay-cache.ts';
import type { Caller } from '../rpc/types.ts';
import { getTopVia } from '../sip/header-values.ts';
import { transportOf } from '../sip/transport.ts';
import { buildResponse } from '../sip/response.ts';
import { serialize } from '../sip/serializer.ts';
import type { Clock } from '../util/clock.ts';
import { type ErrorCode, isOverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import {
  type FlowEvent,
  type LocalUsers,
  type Opened,
  openRequest,
  type SecurityMode,
  sealFor,
} from './call-common.ts';
import { checkInviteSip, refuse } from './call-checks.ts';
import { inCall, poolNow, signCall, verifyCallSignature } from './call-verify.ts';
import type { VerifiedUser } from './key-lookup.ts';
import type { LocalPhones } from './local-phones.ts';
import { callTbs, DOMAIN, encodeMessage, type RedirectMsg } from './messages.ts';
import type { VerifiedUsers } from './verified-users.ts';

/** What the callee's side uses. */
export interface CalleeContext {
  /** The users registered through this adapter (callees, and the keys sealed messages are tried against). */
  users: LocalUsers;
  /** Their phones, registered at this adapter's SIP half. */
  phones: LocalPhones;
  verified: VerifiedUsers;
  replay: ReplayCache;
  clock: Clock;
  log: Logger;
  /** Protected mode seals every REDIRECT, also to a caller that did not seal its INVITE. */
  mode: SecurityMode;
  /** Told about every verified INVITE (optional). */
  onEvent?: (e: FlowEvent) => void;
  /** Counts a SECP2PSIP request that did not decode as an INVITE (answered RPC_MALFORMED). */
  onMalformed?: () => void;
}

/** Callee side: answer one SECP2PSIP INVITE (plain or sealed). Never throws: refusals are ERROR messages. */
export function answerInvite(ctx: CalleeContext, payload: unknown, from: Caller): Promise<Uint8Array> {
  return answerOpenedInvite(ctx, openRequest(ctx.users, payload), from);
}

/** Callee side, once the request is opened (call-common.ts openRequest). */
export function answerOpenedInvite(ctx: CalleeContext, opened: Opened, from: Caller): Promise<Uint8Array> {
  return inCall(() => answerOpened(ctx, opened, from));
}

async function answerOpened(ctx: CalleeContext, opened: Opened, from: Caller): Promise<Uint8Array> {
  const { d, sealedTo } = opened;
  if (!d.ok || d.value.t !== 'INVITE') {
    ctx.onMalformed?.();
    const reason = d.ok ? `unexpected ${d.value.t}` : d.error;
    return encodeMessage({ t: 'ERROR', code: 'RPC_MALFORMED', reason });
  }
  const m = d.value;
  let callerUser: VerifiedUser | undefined;
  try {
    const callee = ctx.users.get(m.to) ?? refuse('USER_UNKNOWN', `${m.to} is not registered at this adapter`);
    if (sealedTo && sealedTo.name !== callee.name) refuse('VERIFICATION_FAILED', 'sealed to another user');
    // Cheap checks first: a stale, replayed or inconsistent INVITE costs no ring lookup of its caller.
    const early = ctx.replay.peek(m.nonce, m.ts, `invite:${m.name}`);
    if (!early.ok) refuse(early.code, early.reason);
    const sip = checkInviteSip(m);
    const tbs = callTbs(m);
    callerUser = await ctx.verified.verifySigned(m.name, (u) =>
      verifyCallSignature(u.key, DOMAIN.invite, tbs, m.sig, poolNow(ctx.clock)),
    );
    const fresh = ctx.replay.check(m.nonce, m.ts, `invite:${m.name}`);
    if (!fresh.ok) refuse(fresh.code, fresh.reason);
    // A callee phone reachable only over its flow is named by a URI of ours, reached the way the caller's phone sends.
    const via = getTopVia(sip);
    const contacts = ctx.phones.contactsOf(callee.name, (via.ok && transportOf(via.value.transport)) || 'UDP', m.name);
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
    const sig = await signCall(callee.signer, DOMAIN.redirect, callTbs(body), poolNow(ctx.clock));
    const redirect: RedirectMsg = { ...body, sig };
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
    return sealedTo && callerUser ? sealFor(callerUser.bundle.sealKey, { t: 'ERROR', code, reason }) : err;
  }
}
