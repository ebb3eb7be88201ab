import { decode, encode, rfc8949EncodeOptions } from 'cborg';
import { fail, ok, type Result } from '../util/errors.ts';

/**
 * Deterministic CBOR (RFC 8949 section 4.2.1: shortest forms, bytewise-sorted
 * map keys). Used for everything that is signed, so one value has one encoding.
 */
export function canonicalEncode(value: unknown): Uint8Array {
  return encode(value, rfc8949EncodeOptions);
}

/** Upper bound on anything we are willing to parse as CBOR from the network. */
export const MAX_CBOR_BYTES = 64 * 1024;

/**
 * Strict decode of untrusted bytes: shortest-form integers and lengths, no
 * indefinite lengths, no undefined/NaN/Infinity, no tags, no duplicate map
 * keys, no trailing bytes. Never throws.
 */
export function safeDecode(bytes: Uint8Array, maxBytes = MAX_CBOR_BYTES): Result<unknown> {
  if (!(bytes instanceof Uint8Array)) return fail('not bytes');
  if (bytes.length === 0) return fail('empty');
  if (bytes.length > maxBytes) return fail(`too large (${bytes.length} > ${maxBytes} bytes)`);
  try {
    const value = decode(bytes, {
      strict: true,
      allowIndefinite: false,
      allowUndefined: false,
      allowNaN: false,
      allowInfinity: false,
      allowBigInt: false,
      rejectDuplicateMapKeys: true,
    });
    return ok(value);
  } catch (e) {
    return fail(`bad CBOR: ${(e as Error).message}`);
  }
}

export function isBytes(v: unknown, len?: number): v is Uint8Array {
  return v instanceof Uint8Array && (len === undefined || v.length === len);
}

export function isUint(v: unknown, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}
