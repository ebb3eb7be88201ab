/**
 * The checks of seed 000 IV.3 on what the other adapter sent, apart from the
 * flow: the REDIRECT and its 302 on the caller's side, the SIP INVITE inside
 * a SECP2PSIP INVITE on the callee's side. Each refuses with an OverlayError
 * that the flow maps to a SIP status.
 */
import type { ReplayCache } from '../identity/replay-cache.ts';
import type { UserKey } from '../identity/user-key.ts';
import { getCSeq, getFrom, getTo, getTopVia } from '../sip/header-values.ts';
import { getHeader, getHeaders, getParam, type SipRequest, type SipResponse } from '../sip/message.ts';
import { parseMessage } from '../sip/parser.ts';
import type { Clock } from '../util/clock.ts';
import { type ErrorCode, OverlayError } from '../util/errors.ts';
import { callTbs, DOMAIN, type InviteMsg, type RedirectMsg } from './messages.ts';
import { bytesEqual } from '../util/bytes.ts';
import { poolNow, verifyCallSignature } from './call-verify.ts';

/** Raised inside the flow; mapped to a SIP status at the edge. */
export function refuse(code: ErrorCode, reason: string): never {
  throw new OverlayError(code, reason);
}

/**
 * Seed IV.3 "SecP2PSIP Redirection Verification", plus: the 302 must answer exactly the phone's INVITE.
 * The signature is checked off the thread when `clock` says so (call-verify.ts poolNow); nothing after it runs
 * before its verdict.
 */
export async function checkRedirect(
  replay: ReplayCache,
  m: RedirectMsg,
  invite: InviteMsg,
  calleeKey: UserKey,
  req: SipRequest,
  clock: Clock,
): Promise<SipResponse> {
  if (m.name !== invite.to || m.to !== invite.name || m.callId !== invite.callId)
    refuse('VERIFICATION_FAILED', 'REDIRECT names another call');
  if (!bytesEqual(m.nonce, invite.nonce)) refuse('IDENTITY_REPLAY', 'REDIRECT does not answer this INVITE');
  if (!(await verifyCallSignature(calleeKey, DOMAIN.redirect, callTbs(m), m.sig, poolNow(clock))))
    refuse('IDENTITY_BAD_SIGNATURE', `REDIRECT is not signed by ${m.name}`);
  const fresh = replay.check(m.nonce, m.ts, `redirect:${m.name}`);
  if (!fresh.ok) refuse(fresh.code, fresh.reason);
  const p = parseMessage(m.sip);
  if (!p.ok || p.value.kind !== 'response' || p.value.status !== 302)
    refuse('VERIFICATION_FAILED', 'REDIRECT does not carry a 302');
  const resp = p.value;
  const same = (h: string) => getHeaders(resp, h).join('\n') === getHeaders(req, h).join('\n');
  const cseq = getCSeq(resp);
  const rcseq = getCSeq(req);
  const branch = (x: SipRequest | SipResponse) => {
    const v = getTopVia(x);
    return v.ok ? getParam(v.value.params, 'branch') : undefined;
  };
  if (
    !same('Call-ID') ||
    !same('Via') ||
    !same('From') ||
    !cseq.ok ||
    !rcseq.ok ||
    cseq.value.seq !== rcseq.value.seq ||
    cseq.value.method !== 'INVITE' ||
    branch(resp) === undefined ||
    branch(resp) !== branch(req) ||
    getHeaders(resp, 'Contact').length === 0
  )
    refuse('VERIFICATION_FAILED', "302 does not answer the phone's INVITE");
  return resp;
}

/** The SIP request inside a SECP2PSIP INVITE must be an INVITE of this call, from the caller to the callee. */
export function checkInviteSip(m: InviteMsg): SipRequest {
  const p = parseMessage(m.sip);
  if (!p.ok || p.value.kind !== 'request' || p.value.method !== 'INVITE')
    refuse('VERIFICATION_FAILED', 'SIP Request is not an INVITE');
  const sip = p.value;
  const from = getFrom(sip);
  const to = getTo(sip);
  if (getHeader(sip, 'Call-ID') !== m.callId) refuse('VERIFICATION_FAILED', 'Call-ID differs from the signed one');
  if (!from.ok || from.value.uri.user !== m.name) refuse('VERIFICATION_FAILED', 'From is not the signing user');
  if (!to.ok || to.value.uri.user !== m.to) refuse('VERIFICATION_FAILED', 'To is not the callee');
  return sip;
}
