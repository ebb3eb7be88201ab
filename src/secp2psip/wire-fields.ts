/**
 * What the SECP2PSIP encoding accepts from the network, and the bounded readers every decoder of it shares.
 *
 * Every message and ring value travels as one deterministic CBOR byte string. The upper bounds (LIMITS), the
 * user-name rule (NAME_RE) and the field readers below are the one place those checks live, so that the message
 * decoder (messages.ts) and the decoders of the values kept in the ring (user-records.ts, presence-state.ts)
 * cannot drift apart. A reader throws `Bad` on a field out of bounds; each decoder catches it and returns a
 * Result, so no decoder of untrusted bytes throws.
 */
import { decode as cborDecode } from 'cborg';
import { fail, ok, type Result } from '../util/errors.ts';

/** Upper bounds for what we accept from the network. */
export const LIMITS = {
  name: 64,
  addr: 300,
  sip: 16 * 1024,
  cert: 8 * 1024,
  chain: 4,
  ring: 32,
  reason: 200,
  message: 64 * 1024,
  /** SubjectPublicKeyInfo DER of a user key: Ed25519 is 44 bytes, RSA-8192 about 1.1 KB. */
  spki: 1200,
  /** Signatures: Ed25519 and P-256 are 64 bytes, RSA up to 512 (4096 bits) or 1024 (8192 bits). */
  sig: 1024,
  bootstraps: 16,
} as const;

/**
 * A user name that is safe as a ring key (`Username` -> location, `Username.i` -> piece i) and as the name of
 * the user's key files. The name is the SIP URI's user part after unescaping (the URI parser does that, so
 * `john%2Edoe` is `john.doe`, as RFC 3261 19.1.4 compares them). Accepted: 1 to 64 of the RFC 3261 `unreserved`
 * characters (letters, digits, `- _ . ! ~ * ' ( )`) and `+` (common in phone-number-like names), except:
 * - no leading `.`: `.`, `..` and hidden names would be path tricks where the name is a file name;
 * - no trailing `.<digits>`: `Username.i` then never equals another user's `Username`, and a piece key parses
 *   back into one name and one index (strip the last `.<digits>`).
 * The other user-part characters (`& = $ , ; ? /`, escaped controls, spaces, non-ASCII) are refused: they are
 * delimiters in URIs, paths or SQL-like logs, and no phone needs them in a name.
 */
export const NAME_RE = /^(?!\.)(?!.*\.[0-9]+$)[A-Za-z0-9_.!~*'()+-]{1,64}$/;

/** An enrolment token as `secp2psip bootstrap --invite` prints it (base64url), and its longest accepted form. */
export const INVITE_RE = /^[A-Za-z0-9_-]{16,128}$/;
export const INVITE_MAX = 128;

/** Whether `name` (an unescaped SIP user part) can be a SecP2PSIP user: see NAME_RE. */
export function isUsableUserName(name: string): boolean {
  return NAME_RE.test(name);
}

export function strip<T extends object>(o: T): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

export type Obj = Record<string, unknown>;

export class Bad extends Error {}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

export function str(o: Obj, k: string, max: number, re?: RegExp): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length === 0 || v.length > max || (re && !re.test(v))) throw new Bad(`bad ${k}`);
  return v;
}

export function bytes(o: Obj, k: string, len?: number, max = LIMITS.sip): Uint8Array {
  const v = o[k];
  if (!(v instanceof Uint8Array) || (len !== undefined && v.length !== len) || v.length > max)
    throw new Bad(`bad ${k}`);
  return v;
}

export function int(o: Obj, k: string, min = 0): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new Bad(`bad ${k}`);
  return v;
}

export function obj(o: Obj, k: string): Obj {
  const v = o[k];
  if (!isObj(v)) throw new Bad(`bad ${k}`);
  return v;
}

export function optBytes(o: Obj, k: string, max: number): Uint8Array | undefined {
  return o[k] === undefined ? undefined : bytes(o, k, undefined, max);
}

export function decodeCbor(buf: unknown): Result<Obj> {
  if (!(buf instanceof Uint8Array)) return fail('not a byte string');
  if (buf.length > LIMITS.message) return fail('message too large');
  let v: unknown;
  try {
    v = cborDecode(buf, { strict: true, rejectDuplicateMapKeys: true, allowUndefined: false });
  } catch (e) {
    return fail(`bad CBOR: ${(e as Error).message}`);
  }
  if (!isObj(v)) return fail('not a map');
  return ok(v);
}
