/**
 * SECP2PSIP error codes on the wire: the append-only table of their numbers, and how a refusal's reason
 * travels without its code's message repeated in front (design.md "How failures are reported": wire error
 * codes are an explicit enum whose unknown values decode to a generic refusal). The ERROR message itself
 * is in messages.ts, which encodes and decodes it with these.
 */
import { type ErrorCode, ERRORS } from '../util/errors.ts';

/**
 * SECP2PSIP error codes on the wire: an explicit table whose numbers are never reused or renumbered (append
 * only). A code missing here is sent as 0, and a number a peer sends that is not here (a newer peer's) decodes
 * to 0: a generic refusal.
 */
export const WIRE_ERROR = Object.freeze({
  RPC_REFUSED: 0,
  RPC_MALFORMED: 1,
  RPC_TIMEOUT: 2,
  RPC_UNREACHABLE: 3,
  RPC_PEER_KEY_MISMATCH: 4,
  RPC_TOO_MANY_IN_FLIGHT: 5,
  USER_UNKNOWN: 6,
  USER_NAME_TAKEN: 7,
  CALLEE_UNREACHABLE: 8,
  VERIFICATION_FAILED: 9,
  TIMEOUT: 10,
  IDENTITY_BAD_KEY: 11,
  IDENTITY_BAD_SIGNATURE: 12,
  IDENTITY_BAD_CERTIFICATE: 13,
  IDENTITY_STALE: 14,
  IDENTITY_REPLAY: 15,
  SHARING_NOT_ENOUGH_PIECES: 16,
  SHARING_PIECES_DISAGREE: 17,
  DHT_NOT_FOUND: 18,
  DHT_LOOKUP_FAILED: 19,
  DHT_RECORD_INVALID: 20,
  DHT_RECORD_TOO_LARGE: 21,
  DHT_STORE_FULL: 22,
  DHT_ACCESS_DENIED: 23,
  DHT_BAD_TOKEN: 24,
  DHT_NOT_READY: 25,
  DHT_BAD_REQUEST: 26,
  BAD_ARGUMENT: 27,
  BAD_CONFIG: 28,
  NOT_READY: 29,
  DATA_UNUSABLE: 30,
  USER_NAME_RATE: 31,
  USER_NAME_QUOTA: 32,
  USER_INVITE_INVALID: 33,
  REGISTRY_UNAVAILABLE: 34,
} satisfies Partial<Record<ErrorCode, number>>);

export type WireErrorCode = keyof typeof WIRE_ERROR;

/** The code every unknown wire number decodes to. */
export const GENERIC_REFUSAL: WireErrorCode = 'RPC_REFUSED';

const WIRE_ERROR_CODE = new Map<number, WireErrorCode>(
  Object.entries(WIRE_ERROR).map(([code, n]) => [n, code as WireErrorCode]),
);

/** The wire number of a code (0, the generic refusal, for a code that does not travel). */
export function wireErrorNumber(code: ErrorCode): number {
  return (WIRE_ERROR as Partial<Record<ErrorCode, number>>)[code] ?? WIRE_ERROR[GENERIC_REFUSAL];
}

/** The code of a wire number: unknown numbers are a generic refusal. */
export function wireErrorCode(n: number): WireErrorCode {
  return WIRE_ERROR_CODE.get(n) ?? GENERIC_REFUSAL;
}

/** The detail of a refusal without its code's message in front (senders pass `error.message`, which has it). */
export function errorDetail(code: ErrorCode, reason: string): string {
  const prefix = ERRORS[code];
  if (reason === prefix) return '';
  return reason.startsWith(`${prefix}: `) ? reason.slice(prefix.length + 2) : reason;
}
