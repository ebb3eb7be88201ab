/**
 * Instant messages (RFC 3428 MESSAGE) between SecP2PSIP users, adapter to
 * adapter, with the guarantees of a call (caller.ts, callee.ts):
 *
 * - Sender's side (`sendIm`): the recipient is verified through the ring
 *   exactly as a callee is (VerifiedUsers: key rebuild, trust on first use,
 *   one fresh look-up when a cached or unconfirmed user fails), then gets a
 *   SECP2PSIP MESSAGE signed by the sender over (kind, both names, Call-ID,
 *   nonce, timestamp, SHA-256 of the phone's SIP MESSAGE), sealed to the
 *   recipient in protected mode. Only a DELIVERED signed by the recipient,
 *   echoing the nonce, counts as delivered.
 * - Recipient's side (`answerIm`): cheap checks first (recipient local, sealed
 *   to that user, timestamp window, nonce unseen, SIP MESSAGE consistent with
 *   the signed names), then the sender's key through the ring and the
 *   signature; the nonce is spent only then. The phones get a MESSAGE built
 *   here whose From is the verified sender (the PhoneInbox port): nothing a
 *   sender wrote in its own headers reaches them but the body and its type.
 *
 * Replay: the same window and nonce cache as INVITE, in a scope of their own
 * (`message:<sender>`), so a captured MESSAGE is delivered once, and the
 * receiver named in the signed fields stops it being replayed to another
 * adapter's user.
 */
import type { ReplayCache } from '../identity/replay-cache.ts';
import type { Caller, RpcEndpoint } from '../rpc/types.ts';
import { sipRetryAfterOf, sipStatusOf } from '../sip/error-status.ts';
import { getFrom, getTo } from '../sip/header-values.ts';
import { getHeader, type SipRequest } from '../sip/message.ts';
import { parseMessage } from '../sip/parser.ts';
import { serialize } from '../sip/serializer.ts';
import { bytesEqual } from '../util/bytes.ts';
import type { Clock } from '../util/clock.ts';
import { type ErrorCode, isOverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { Random } from '../util/random.ts';
import { type LocalUser, type LocalUsers, type Opened, type SecurityMode, sealFor } from './call-common.ts';
import { requestAdapter } from './adapter-request.ts';
import { refuse } from './call-checks.ts';
import type { VerifiedUser } from './key-lookup.ts';
import { callTbs, DOMAIN, type DeliveredMsg, encodeMessage, type ImMsg, NAME_RE } from './messages.ts';
import type { DeliveredLog, Mailbox } from './mailbox.ts';
import type { VerifiedUsers } from './verified-users.ts';

/** Largest MESSAGE body carried (bytes); a larger one gets 413 at the SIP edge (RFC 3428 7: keep them small). */
export const MAX_IM_BODY = 8 * 1024;

/** Where the recipient's adapter hands a verified message: its SIP half sends it to the user's phones. */
export interface PhoneInbox {
  /**
   * Send a MESSAGE from `from` with this body to every registered phone of `to`; resolves with how many answered
   * 2xx (0 when none is registered or none took it).
   */
  deliver(to: string, from: string, body: Uint8Array, contentType: string | undefined): Promise<number>;
}

export interface MessagingContext {
  endpoint: RpcEndpoint;
  users: LocalUsers;
  verified: VerifiedUsers;
  replay: ReplayCache;
  clock: Clock;
  random: Random;
  log: Logger;
  mode: () => SecurityMode;
  /** Time allowed for the SECP2PSIP MESSAGE/DELIVERED exchange (ms). */
  timeoutMs: number;
  /** The phones of this adapter's users (absent: messages to them are refused as unreachable). */
  inbox?: PhoneInbox;
  /** Where a message goes when its recipient is offline (mailbox.ts; absent: refused as unreachable). */
  mailbox?: Mailbox;
  /** Nonces of messages delivered here, live or stored: none is delivered twice (mailbox.ts). */
  delivered?: DeliveredLog;
}

export type SendOutcome =
  | { ok: true; delivered: number; recipient: VerifiedUser; stored?: { slot: number } }
  | {
      ok: false;
      status: number;
      reason: string;
      code: ErrorCode;
      /** Seconds the phone is asked to wait before sending again (RFC 3261 20.33), for failures that pass. */
      retryAfterS?: number;
    };

/** Refusals after which the message is stored for the recipient instead (mailbox.ts). */
const STORE_ON = new Set<ErrorCode>(['CALLEE_UNREACHABLE', 'TIMEOUT', 'NOT_READY', 'RPC_UNREACHABLE']);

/**
 * Sender's side: from the phone's MESSAGE to a verified DELIVERED, or stored in the recipient's mailbox when
 * the recipient's adapter cannot be reached or has no phone to take it (`stored`), or a SIP error status.
 */
export async function sendIm(
  ctx: MessagingContext,
  req: SipRequest,
  sender: LocalUser,
  to: string,
): Promise<SendOutcome> {
  let last: { u: VerifiedUser; m: ImMsg } | undefined;
  try {
    if (!NAME_RE.test(to)) refuse('USER_UNKNOWN', to);
    const callId = getHeader(req, 'Call-ID') ?? refuse('SIP_MALFORMED', 'no Call-ID');
    const sip = new Uint8Array(serialize(req));
    try {
      const out = await ctx.verified.withUser(to, async (u) => {
        last = { u, m: signIm(ctx, sip, sender, to, callId) };
        return { delivered: await exchangeIm(ctx, last.m, sender, u), recipient: u };
      });
      ctx.log.info({ from: sender.name, to, delivered: out.delivered }, `message to ${to} delivered`);
      return { ok: true, ...out };
    } catch (e) {
      // The same signed MESSAGE is stored: if the live one did arrive after all, its nonce keeps it from being
      // delivered twice.
      if (!last || !ctx.mailbox || !isOverlayError(e) || !STORE_ON.has(e.code)) throw e;
      const slot = await ctx.mailbox.deposit(sender, last.u, last.m);
      return { ok: true, delivered: 0, recipient: last.u, stored: { slot } };
    }
  } catch (e) {
    const code: ErrorCode = isOverlayError(e) ? e.code : 'BAD_CONFIG';
    const status = isOverlayError(e) ? sipStatusOf(e) : 500;
    const reason = isOverlayError(e) ? shortReason(e.message) : 'Server Internal Error';
    const retryAfterS = isOverlayError(e) ? sipRetryAfterOf(e) : undefined;
    ctx.log.info({ from: sender.name, to, status, reason }, 'message refused');
    return { ok: false, status, reason, code, ...(retryAfterS !== undefined ? { retryAfterS } : {}) };
  }
}

/** The SECP2PSIP MESSAGE for the phone's request, signed by the sender. */
function signIm(ctx: MessagingContext, sip: Uint8Array, sender: LocalUser, to: string, callId: string): ImMsg {
  const body: Omit<ImMsg, 'sig'> = {
    t: 'MESSAGE',
    name: sender.name,
    to,
    callId,
    nonce: ctx.random.bytes(16),
    ts: ctx.clock.wallNow(),
    sip,
  };
  return { ...body, sig: sender.signer.sign(DOMAIN.message, callTbs(body)) };
}

function shortReason(s: string): string {
  const r = s.replace(/[\r\n\t]+/g, ' ').trim();
  return r.length > 120 ? `${r.slice(0, 117)}...` : r;
}

/** One SECP2PSIP MESSAGE to the recipient's adapter; resolves with the verified count of phones that took it. */
async function exchangeIm(
  ctx: MessagingContext,
  m: ImMsg,
  sender: LocalUser,
  recipient: VerifiedUser,
): Promise<number> {
  const to = recipient.bundle.name;
  const callId = m.callId;
  const sealKey = ctx.mode() === 'protected' ? recipient.bundle.sealKey : undefined;
  const a = await requestAdapter(ctx, recipient.adapter, m, sealKey, sender, { peer: to });
  if (a.t !== 'DELIVERED') refuse('VERIFICATION_FAILED', `unexpected ${a.t} from ${to}'s adapter`);
  if (a.name !== to || a.to !== sender.name || a.callId !== callId)
    refuse('VERIFICATION_FAILED', 'DELIVERED names another message');
  if (!bytesEqual(a.nonce, m.nonce)) refuse('IDENTITY_REPLAY', 'DELIVERED does not answer this MESSAGE');
  if (!recipient.key.verify(DOMAIN.delivered, callTbs(a), a.sig))
    refuse('IDENTITY_BAD_SIGNATURE', `DELIVERED is not signed by ${to}`);
  const fresh = ctx.replay.check(a.nonce, a.ts, `delivered:${to}`);
  if (!fresh.ok) refuse(fresh.code, fresh.reason);
  const count = Number(new TextDecoder().decode(a.sip));
  if (!Number.isSafeInteger(count) || count < 1) refuse('VERIFICATION_FAILED', 'DELIVERED to no phone');
  return count;
}

/** The SIP request inside a SECP2PSIP MESSAGE: a MESSAGE with the signed Call-ID, from the signer to the recipient. */
export function checkImSip(m: ImMsg): SipRequest {
  const p = parseMessage(m.sip);
  if (!p.ok || p.value.kind !== 'request' || p.value.method !== 'MESSAGE')
    refuse('VERIFICATION_FAILED', 'SIP Request is not a MESSAGE');
  const sip = p.value;
  const from = getFrom(sip);
  const to = getTo(sip);
  if (getHeader(sip, 'Call-ID') !== m.callId) refuse('VERIFICATION_FAILED', 'Call-ID differs from the signed one');
  if (!from.ok || from.value.uri.user !== m.name) refuse('VERIFICATION_FAILED', 'From is not the signing user');
  if (!to.ok || to.value.uri.user !== m.to) refuse('VERIFICATION_FAILED', 'To is not the recipient');
  if (sip.body.length > MAX_IM_BODY) refuse('VERIFICATION_FAILED', 'message body too large');
  return sip;
}

/** Recipient's side: answer one SECP2PSIP MESSAGE (opened by call-common.ts openRequest). Never throws. */
export async function answerIm(ctx: MessagingContext, opened: Opened, from: Caller): Promise<Uint8Array> {
  const { d, sealedTo } = opened;
  if (!d.ok || d.value.t !== 'MESSAGE')
    return encodeMessage({ t: 'ERROR', code: 'RPC_MALFORMED', reason: d.ok ? `unexpected ${d.value.t}` : d.error });
  const m = d.value;
  let sender: VerifiedUser | undefined;
  try {
    const recipient = ctx.users.get(m.to) ?? refuse('USER_UNKNOWN', `${m.to} is not registered at this adapter`);
    if (sealedTo && sealedTo.name !== recipient.name) refuse('VERIFICATION_FAILED', 'sealed to another user');
    // Cheap checks first: a stale, replayed or inconsistent MESSAGE costs no ring lookup of its sender.
    const scope = `message:${m.name}`;
    const early = ctx.replay.peek(m.nonce, m.ts, scope);
    if (!early.ok) refuse(early.code, early.reason);
    const sip = checkImSip(m);
    sender = await ctx.verified.verifySigned(m.name, (u) => u.key.verify(DOMAIN.message, callTbs(m), m.sig));
    const fresh = ctx.replay.check(m.nonce, m.ts, scope);
    if (!fresh.ok) refuse(fresh.code, fresh.reason);
    // Delivered already (stored after a timeout, then collected): say so again, deliver nothing twice.
    const delivered = ctx.delivered?.has(m.nonce)
      ? 1
      : ctx.inbox
        ? await ctx.inbox.deliver(recipient.name, m.name, sip.body, getHeader(sip, 'Content-Type'))
        : 0;
    if (delivered === 0) refuse('CALLEE_UNREACHABLE', `no phone of ${recipient.name} took the message`);
    ctx.delivered?.add(m.nonce, ctx.clock.wallNow());
    const body: Omit<DeliveredMsg, 'sig'> = {
      t: 'DELIVERED',
      name: recipient.name,
      to: m.name,
      callId: m.callId,
      nonce: m.nonce,
      ts: ctx.clock.wallNow(),
      sip: new TextEncoder().encode(String(delivered)),
    };
    const answer: DeliveredMsg = { ...body, sig: recipient.signer.sign(DOMAIN.delivered, callTbs(body)) };
    ctx.log.info(
      { from: m.name, to: recipient.name, phones: delivered, sealed: sealedTo !== undefined, via: from.addr },
      `verified ${m.name}'s MESSAGE; delivered`,
    );
    return sealedTo || ctx.mode() === 'protected' ? sealFor(sender.bundle.sealKey, answer) : encodeMessage(answer);
  } catch (e) {
    const code: ErrorCode = isOverlayError(e) ? e.code : 'BAD_CONFIG';
    const reason = isOverlayError(e) ? e.message : 'internal error';
    ctx.log.info({ from: m.name, to: m.to, code, reason }, 'SECP2PSIP MESSAGE refused');
    const err = { t: 'ERROR' as const, code, reason };
    return sealedTo && sender ? sealFor(sender.bundle.sealKey, err) : encodeMessage(err);
  }
}
