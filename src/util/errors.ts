/**
 * The one registry of typed errors: codes are stable and never reused, each
 * layer owns its group, and nothing here knows about SIP statuses or wire
 * numbers. The SIP edge maps codes to statuses once (sip/error-status.ts);
 * SECP2PSIP carries them as its own numeric table (secp2psip/messages.ts).
 */

/** Configuration and command line (cli/, daemons). */
const CONFIG_ERRORS = {
  BAD_ARGUMENT: 'bad command-line argument',
  BAD_CONFIG: 'bad configuration',
  DATA_UNUSABLE: 'unusable data file',
} as const;

/** sip/: messages from the network. */
const SIP_ERRORS = {
  SIP_MALFORMED: 'malformed SIP message',
  SIP_TOO_LARGE: 'SIP message too large',
} as const;

/** rpc/: node-to-node links. */
const RPC_ERRORS = {
  RPC_MALFORMED: 'malformed RPC frame',
  RPC_TIMEOUT: 'RPC request timed out',
  RPC_UNREACHABLE: 'peer unreachable',
  RPC_REFUSED: 'peer refused the request',
  RPC_PEER_KEY_MISMATCH: 'peer presented a different key than pinned',
  RPC_TOO_MANY_IN_FLIGHT: 'too many requests in flight to this peer',
} as const;

/** dht/: Chord, Whanau and the record store. */
const DHT_ERRORS = {
  DHT_NOT_FOUND: 'key not found in the DHT',
  DHT_LOOKUP_FAILED: 'lookup failed',
  DHT_RECORD_INVALID: 'record rejected by validator',
  DHT_RECORD_TOO_LARGE: 'record too large',
  DHT_STORE_FULL: 'node storage full',
  DHT_ACCESS_DENIED: 'caller may not call this method',
  DHT_BAD_TOKEN: 'query token missing, forged, expired or spent',
  DHT_NOT_READY: 'setup phase not reached in time',
  DHT_BAD_REQUEST: 'malformed DHT request',
} as const;

/** sharing/: Shamir pieces. */
const SHARING_ERRORS = {
  SHARING_NOT_ENOUGH_PIECES: 'not enough pieces to rebuild',
  SHARING_PIECES_DISAGREE: 'pieces disagree beyond what can be corrected',
} as const;

/** identity/: keys, signatures, certificates. */
const IDENTITY_ERRORS = {
  IDENTITY_BAD_KEY: 'bad or unsupported key',
  IDENTITY_BAD_SIGNATURE: 'signature verification failed',
  IDENTITY_BAD_CERTIFICATE: 'certificate rejected',
  IDENTITY_STALE: 'message timestamp outside the accepted window',
  IDENTITY_REPLAY: 'message replayed',
} as const;

/** The applications (secp2psip/, whanausip/): users and calls. */
const APP_ERRORS = {
  USER_UNKNOWN: 'unknown user',
  USER_NAME_TAKEN: 'name already registered with another key',
  CALLEE_UNREACHABLE: 'callee unreachable',
  VERIFICATION_FAILED: 'verification failed',
  TIMEOUT: 'timed out',
  NOT_READY: 'starting up; try again shortly',
  USER_NAME_RATE: 'too many new names; try again later',
  USER_NAME_QUOTA: 'new-name quota used up',
  USER_INVITE_INVALID: 'enrolment token missing, unknown, spent, expired or for another name',
  REGISTRY_UNAVAILABLE: 'the name registry is unreachable; try again shortly',
} as const;

/** Every code with its message. */
export const ERRORS = Object.freeze({
  ...CONFIG_ERRORS,
  ...SIP_ERRORS,
  ...RPC_ERRORS,
  ...DHT_ERRORS,
  ...SHARING_ERRORS,
  ...IDENTITY_ERRORS,
  ...APP_ERRORS,
});

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && Object.hasOwn(ERRORS, s);
}

export class OverlayError extends Error {
  readonly code: ErrorCode;
  readonly detail?: Record<string, unknown>;
  /** The reason alone, without the code's message in front. */
  readonly reason?: string;

  constructor(code: ErrorCode, reason?: string, detail?: Record<string, unknown>) {
    super(reason ? `${ERRORS[code]}: ${reason}` : ERRORS[code]);
    this.name = 'OverlayError';
    this.code = code;
    this.reason = reason;
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
