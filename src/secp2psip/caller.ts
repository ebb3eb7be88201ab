/**
 * SecP2PSIP session establishment, seed 000 IV.3 (Figure 3), the caller's
 * side (AdapterA): contact lookup and key rebuild of the callee, trust on
 * first use (verified-users.ts), SECP2PSIP INVITE (Table 2) signed by the
 * caller and, in protected mode, sealed to the callee; then verification of
 * the SECP2PSIP REDIRECT (Table 3) and of the 302 inside it against the
 * phone's own INVITE (call-checks.ts). Only then is the 302 handed to the
 * phone. The callee's side is callee.ts.
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
 *
 * The INVITE's signature depends on nothing the ring returns, so it is made
 * while the reads travel (the turn after their requests are written), not
 * when the location record arrives; a second exchange (a stale location
 * looked up again) signs a new INVITE with a new nonce.
 */
import type { ReplayCache } from '../identity/replay-cache.ts';
import type { NodeRef, RpcEndpoint } from '../rpc/types.ts';
import { getHeader, type SipRequest, type SipResponse } from '../sip/message.ts';
import { serialize } from '../sip/serializer.ts';
import type { Clock } from '../util/clock.ts';
import { sipRetryAfterOf, sipStatusOf } from '../sip/error-status.ts';
import { type ErrorCode, isOverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { Random } from '../util/random.ts';
import { requestAdapter } from './adapter-request.ts';
import type { FlowEvent, LocalUser, SecurityMode } from './call-common.ts';
import { checkRedirect, refuse } from './call-checks.ts';
import { inCall, poolNow, signCall } from './call-verify.ts';
import type { OnAdapter, VerifiedUser } from './key-lookup.ts';
import { callTbs, DOMAIN, type InviteMsg, NAME_RE, type RedirectMsg } from './messages.ts';
import type { VerifiedUsers } from './verified-users.ts';
import { bytesEqual } from '../util/bytes.ts';

/** What the caller's side uses. */
export interface CallerContext {
  endpoint: RpcEndpoint;
  verified: VerifiedUsers;
  replay: ReplayCache;
  clock: Clock;
  random: Random;
  log: Logger;
  mode: SecurityMode;
  /** Time allowed for the SECP2PSIP INVITE/REDIRECT exchange (ms). */
  timeoutMs: number;
  /** Signed mode: send the INVITE before the callee key is rebuilt (see the module comment; default true). */
  pipeline?: boolean;
  /** Told about every verified REDIRECT (optional). */
  onEvent?: (e: FlowEvent) => void;
}

/**
 * When each step of the flow happened, in ms after the phone's INVITE reached
 * placeCall (the dashboard draws them as a ladder): the SECP2PSIP INVITE sent
 * to the callee's adapter, its REDIRECT received, the REDIRECT verified.
 */
export interface CallTrace {
  inviteSentMs?: number;
  redirectMs?: number;
  verifiedMs?: number;
  /** The callee's adapter the INVITE went to (ring address). */
  calleeAdapter?: string;
}

export type CallOutcome =
  | { ok: true; response: SipResponse; callee: VerifiedUser; protected: boolean; trace: CallTrace }
  | {
      ok: false;
      status: number;
      reason: string;
      code: ErrorCode;
      trace: CallTrace;
      /** Seconds the phone is asked to wait before trying again (RFC 3261 20.33), for failures that pass. */
      retryAfterS?: number;
    };

function outcomeOf(e: unknown, trace: CallTrace): CallOutcome {
  if (isOverlayError(e)) {
    const reason = e.message.length > 120 ? `${e.message.slice(0, 117)}...` : e.message;
    const retryAfterS = sipRetryAfterOf(e);
    return {
      ok: false,
      status: sipStatusOf(e),
      reason: sipReason(reason),
      code: e.code,
      trace,
      ...(retryAfterS !== undefined ? { retryAfterS } : {}),
    };
  }
  return { ok: false, status: 500, reason: 'Server Internal Error', code: 'BAD_CONFIG', trace };
}

/** Reason phrases are TEXT-UTF8 without CR/LF (RFC 3261 25.1). */
function sipReason(s: string): string {
  return s.replace(/[\r\n\t]+/g, ' ').trim();
}

/** Caller side: from the phone's INVITE to a verified 302, or a SIP error status. */
export function placeCall(
  ctx: CallerContext,
  req: SipRequest,
  caller: LocalUser,
  calleeName: string,
  isCancelled: () => boolean = () => false,
): Promise<CallOutcome> {
  return inCall(() => place(ctx, req, caller, calleeName, isCancelled));
}

async function place(
  ctx: CallerContext,
  req: SipRequest,
  caller: LocalUser,
  calleeName: string,
  isCancelled: () => boolean,
): Promise<CallOutcome> {
  const trace: CallTrace = {};
  const t0 = ctx.clock.now();
  const step = () => ctx.clock.now() - t0;
  try {
    // Start after whatever the SIP layer is delivering right now (a CANCEL injected right behind the
    // INVITE): a callee whose records this adapter holds itself would otherwise be sent the INVITE
    // before that CANCEL is seen.
    await Promise.resolve();
    if (isCancelled()) refuse('TIMEOUT', 'cancelled');
    if (!NAME_RE.test(calleeName)) refuse('USER_UNKNOWN', calleeName);
    const callId = getHeader(req, 'Call-ID') ?? refuse('SIP_MALFORMED', 'no Call-ID');
    // The first exchange's INVITE, signed while the ring reads are on their way; any later one is signed anew.
    let ready: Promise<InviteMsg> | undefined;
    const invite = () => {
      const i = ready ?? signedInvite(ctx, req, caller, calleeName, callId);
      ready = undefined;
      return i;
    };
    // Signed mode: INVITE on its way as soon as the callee's adapter is known (see the module comment).
    let early: { to: NodeRef; answer: Promise<Exchanged> } | undefined;
    let exchanged = false;
    const sendEarly: OnAdapter | undefined =
      ctx.mode === 'signed' && ctx.pipeline !== false
        ? (to) => {
            if (early || isCancelled()) return;
            exchanged = true;
            const answer = exchangeInvite(ctx, caller, invite(), calleeName, to, undefined, trace, step);
            answer.catch(() => {});
            early = { to, answer };
          }
        : undefined;
    const looked = ctx.verified.verify(calleeName, false, sendEarly);
    // The reads' requests leave on this turn of the event loop (rpc/tls-connection.ts writes once per turn):
    // the signature is made on the next one, while they travel, not before they go.
    let lookedDone = false;
    looked.then(
      () => {
        lookedDone = true;
      },
      () => {
        lookedDone = true;
      },
    );
    setImmediate(() => {
      if (!exchanged && !lookedDone && !isCancelled()) ready ??= signedInvite(ctx, req, caller, calleeName, callId);
    });
    let callee = await looked;
    if (isCancelled()) refuse('TIMEOUT', 'cancelled');
    const attempt = async (u: VerifiedUser) => {
      const sealKey = ctx.mode === 'protected' ? u.bundle.sealKey : undefined;
      const sent = early && sameNode(early.to, u.adapter) ? early.answer : undefined;
      early = undefined;
      exchanged = true;
      const out = await (sent ?? exchangeInvite(ctx, caller, invite(), calleeName, u.adapter, sealKey, trace, step));
      const checked = await checkRedirect(ctx.replay, out.m, out.invite, u.key, req, ctx.clock);
      trace.verifiedMs = step();
      return checked;
    };
    // A cached or unconfirmed location or key may be stale (moved, re-registered): withUser looks up once more,
    // confirmed, and tries again (not after a CANCEL).
    const verified = await ctx.verified.withUser(
      calleeName,
      async (u) => {
        if (u !== callee && isCancelled()) refuse('TIMEOUT', 'cancelled');
        return { response: await attempt(u), callee: u };
      },
      callee,
    );
    const response: SipResponse = verified.response;
    callee = verified.callee;
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
    return { ok: true, response, callee, protected: ctx.mode === 'protected', trace };
  } catch (e) {
    const out = outcomeOf(e, trace);
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
  return a.id === b.id && a.addr === b.addr && bytesEqual(a.key, b.key);
}

/** A SECP2PSIP INVITE (Table 2) for the phone's request, with a fresh nonce, signed by the caller. */
async function signedInvite(
  ctx: CallerContext,
  req: SipRequest,
  caller: LocalUser,
  calleeName: string,
  callId: string,
): Promise<InviteMsg> {
  const body: Omit<InviteMsg, 'sig'> = {
    t: 'INVITE',
    name: caller.name,
    to: calleeName,
    callId,
    nonce: ctx.random.bytes(16),
    ts: ctx.clock.wallNow(),
    sip: new Uint8Array(serialize(req)),
  };
  // On the worker pool while other calls are in progress (call-verify.ts signCall): the same signature.
  return { ...body, sig: await signCall(caller.signer, DOMAIN.invite, callTbs(body), poolNow(ctx.clock)) };
}

/**
 * The signed INVITE to the callee's adapter, sealed to `sealKey` when given (adapter-request.ts, timed for
 * the trace); resolves with its REDIRECT (Table 3), not yet verified.
 */
async function exchangeInvite(
  ctx: CallerContext,
  caller: LocalUser,
  signing: Promise<InviteMsg>,
  calleeName: string,
  adapter: NodeRef,
  sealKey: Uint8Array | undefined,
  trace: CallTrace,
  step: () => number,
): Promise<Exchanged> {
  const invite = await signing;
  const m = await requestAdapter(ctx, adapter, invite, sealKey, caller, {
    peer: calleeName,
    sent: () => {
      trace.inviteSentMs = step();
      trace.calleeAdapter = adapter.addr;
    },
    answered: () => {
      trace.redirectMs = step();
    },
  });
  if (m.t !== 'REDIRECT') refuse('VERIFICATION_FAILED', `unexpected ${m.t} from ${calleeName}'s adapter`);
  return { m, invite };
}
