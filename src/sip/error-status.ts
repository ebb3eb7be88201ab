/**
 * The SIP edge's one mapping from typed errors (util/errors.ts) to response
 * statuses: 404 unknown user, 480 unreachable, 403 verification failed, 408
 * timeout, 400 malformed, 503 overloaded (RFC 3261 21.4, 21.5). Every server
 * that answers a phone on behalf of a lower layer asks here, also for the
 * Retry-After (20.33) of failures that are known to pass.
 */
import { type ErrorCode, isOverlayError } from '../util/errors.ts';
import { reasonPhrase } from './response.ts';

export const SIP_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  BAD_ARGUMENT: 400,
  BAD_CONFIG: 500,
  DATA_UNUSABLE: 500,
  SIP_MALFORMED: 400,
  SIP_TOO_LARGE: 513,
  RPC_MALFORMED: 500,
  RPC_TIMEOUT: 408,
  RPC_UNREACHABLE: 480,
  RPC_REFUSED: 403,
  RPC_PEER_KEY_MISMATCH: 403,
  RPC_TOO_MANY_IN_FLIGHT: 503,
  DHT_NOT_FOUND: 404,
  DHT_LOOKUP_FAILED: 480,
  DHT_RECORD_INVALID: 403,
  DHT_RECORD_TOO_LARGE: 500,
  DHT_STORE_FULL: 503,
  DHT_ACCESS_DENIED: 403,
  DHT_BAD_TOKEN: 403,
  DHT_NOT_READY: 503,
  DHT_BAD_REQUEST: 400,
  SHARING_NOT_ENOUGH_PIECES: 480,
  SHARING_PIECES_DISAGREE: 403,
  IDENTITY_BAD_KEY: 403,
  IDENTITY_BAD_SIGNATURE: 403,
  IDENTITY_BAD_CERTIFICATE: 403,
  IDENTITY_STALE: 403,
  IDENTITY_REPLAY: 403,
  USER_UNKNOWN: 404,
  USER_NAME_TAKEN: 403,
  CALLEE_UNREACHABLE: 480,
  VERIFICATION_FAILED: 403,
  TIMEOUT: 408,
  NOT_READY: 503,
  USER_NAME_RATE: 503,
  USER_NAME_QUOTA: 403,
  USER_INVITE_INVALID: 403,
  REGISTRY_UNAVAILABLE: 503,
});

/**
 * Seconds a phone is asked to wait (RFC 3261 20.33) for failures that pass by themselves. Too few key pieces
 * answered (a holder unreachable, records moving while the ring repairs itself after a member left) is one: a
 * 480 (21.4.18) with Retry-After makes the phone try again instead of taking the failure as final. A few
 * stabilization rounds of the ring (1 s each by default) and a record upkeep pass fit in 5 s.
 */
export const SIP_RETRY_AFTER_S: Readonly<Partial<Record<ErrorCode, number>>> = Object.freeze({
  SHARING_NOT_ENOUGH_PIECES: 5,
});

/** The Retry-After (s) a failure is answered with, if its code is one that passes by itself. */
export function sipRetryAfterOf(e: unknown): number | undefined {
  return isOverlayError(e) ? SIP_RETRY_AFTER_S[e.code] : undefined;
}

/** The status a failure is answered with: its code's, or 500 for anything that is not a typed error. */
export function sipStatusOf(e: unknown): number {
  return isOverlayError(e) ? SIP_STATUS[e.code] : 500;
}

/**
 * A reason phrase for a failure: the typed error's message (TEXT-UTF8 without CR/LF, RFC 3261 25.1), or the
 * status's standard phrase for anything else (whose text may hold internals).
 */
export function sipReasonOf(e: unknown, status = sipStatusOf(e)): string {
  return isOverlayError(e) ? e.message.replace(/[\r\n\t]+/g, ' ').trim() : reasonPhrase(status);
}
