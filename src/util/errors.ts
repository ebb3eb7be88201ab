/**
 * The one registry of typed errors. Codes are stable and never reused; SIP
 * status codes are attached here but applied only at the SIP edge.
 */
export const ERRORS = {
  BAD_ARGUMENT: { message: 'bad command-line argument', sip: 400 },
  BAD_CONFIG: { message: 'bad configuration', sip: 500 },
  SIP_MALFORMED: { message: 'malformed SIP message', sip: 400 },
  SIP_TOO_LARGE: { message: 'SIP message too large', sip: 513 },
  RPC_MALFORMED: { message: 'malformed RPC frame', sip: 500 },
  RPC_TIMEOUT: { message: 'RPC request timed out', sip: 408 },
  RPC_UNREACHABLE: { message: 'peer unreachable', sip: 480 },
  RPC_REFUSED: { message: 'peer refused the request', sip: 403 },
  RPC_PEER_KEY_MISMATCH: { message: 'peer presented a different key than pinned', sip: 403 },
  RPC_TOO_MANY_IN_FLIGHT: { message: 'too many requests in flight to this peer', sip: 503 },
  DHT_NOT_FOUND: { message: 'key not found in the DHT', sip: 404 },
  DHT_LOOKUP_FAILED: { message: 'lookup failed', sip: 480 },
  DHT_RECORD_INVALID: { message: 'record rejected by validator', sip: 403 },
  DHT_RECORD_TOO_LARGE: { message: 'record too large', sip: 500 },
  DHT_STORE_FULL: { message: 'node storage full', sip: 503 },
  SHARING_NOT_ENOUGH_PIECES: { message: 'not enough pieces to rebuild', sip: 480 },
  SHARING_PIECES_DISAGREE: { message: 'pieces disagree beyond what can be corrected', sip: 403 },
  IDENTITY_BAD_KEY: { message: 'bad or unsupported key', sip: 403 },
  IDENTITY_BAD_SIGNATURE: { message: 'signature verification failed', sip: 403 },
  IDENTITY_BAD_CERTIFICATE: { message: 'certificate rejected', sip: 403 },
  IDENTITY_STALE: { message: 'message timestamp outside the accepted window', sip: 403 },
  IDENTITY_REPLAY: { message: 'message replayed', sip: 403 },
  USER_UNKNOWN: { message: 'unknown user', sip: 404 },
  USER_NAME_TAKEN: { message: 'name already registered with another key', sip: 403 },
  CALLEE_UNREACHABLE: { message: 'callee unreachable', sip: 480 },
  VERIFICATION_FAILED: { message: 'verification failed', sip: 403 },
  TIMEOUT: { message: 'timed out', sip: 408 },
  DHT_ACCESS_DENIED: { message: 'caller may not call this method', sip: 403 },
  DHT_BAD_TOKEN: { message: 'query token missing, forged, expired or spent', sip: 403 },
  DHT_NOT_READY: { message: 'setup phase not reached in time', sip: 503 },
  DHT_BAD_REQUEST: { message: 'malformed DHT request', sip: 400 },
  DATA_UNUSABLE: { message: 'unusable data file', sip: 500 },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class OverlayError extends Error {
  readonly code: ErrorCode;
  readonly sipStatus: number;
  readonly detail?: Record<string, unknown>;
  /** The reason alone, without the code's message in front. */
  readonly reason?: string;

  constructor(code: ErrorCode, reason?: string, detail?: Record<string, unknown>) {
    super(reason ? `${ERRORS[code].message}: ${reason}` : ERRORS[code].message);
    this.name = 'OverlayError';
    this.code = code;
    this.reason = reason;
    this.sipStatus = ERRORS[code].sip;
    this.detail = detail;
  }
}

export function isOverlayError(e: unknown, code?: ErrorCode): e is OverlayError {
  return e instanceof OverlayError && (code === undefined || e.code === code);
}

/** Result type for decoding untrusted input: decoders return this instead of throwing. */
export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = <T = never>(error: string): Result<T> => ({ ok: false, error });
