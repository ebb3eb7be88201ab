/**
 * RPC payload and message codec.
 *
 * Payloads are deterministic CBOR (RFC 8949 section 4.2.1: preferred
 * serialization, map keys sorted bytewise, no indefinite lengths), so equal
 * values always give equal bytes, which matters for signatures over payloads
 * and for byte counts shared with the in-memory network.
 *
 * Each RPC message is one frame body (see frame.ts for the length prefix):
 *
 *   REQUEST  0x01 | id u32 | method length u8 | method UTF-8 | CBOR payload
 *   RESPONSE 0x02 | id u32 | CBOR payload
 *   ERROR    0x03 | id u32 | kind u8 | CBOR { m: message, c?: remote code }
 *   HELLO    0x04 | CBOR NodeRef { id, addr, key, admission? }
 *
 * Decoding untrusted bytes never throws: it returns a Result.
 */
import {
  decode as cborDecode,
  encode as cborEncode,
  encodeInto,
  rfc8949EncodeOptions,
  Token,
  Tokenizer,
  Type,
} from 'cborg';
import { fail, ok, type Result } from '../util/errors.ts';
import { decodeFast, encodeFast, FALLBACK } from './cbor-fast.ts';
import type { NodeRef, Payload } from './types.ts';

/**
 * undefined has no place in the data model (the decoder refuses it): object
 * fields holding it are left out, and elsewhere (a handler returning nothing,
 * an array hole) it is written as null.
 */
const ENCODE_OPTIONS = {
  ...rfc8949EncodeOptions,
  ignoreUndefinedProperties: true,
  typeEncoders: {
    undefined: () => [new Token(Type.null, null)],
    Object: (obj: unknown) => refTokens(obj),
  },
};

/**
 * NodeRefs are most of every routing reply (successor lists, fingers, each
 * with its admission), and the same long-lived objects go out again and
 * again. Their token trees (keys already in RFC 8949 order) are kept per
 * object; a ref is immutable once built, which every decoder and routing
 * table here respects. Other objects take cborg's general path.
 */
const refTokenCache = new WeakMap<object, TokenTree>();
type TokenTree = Token | TokenTree[];

function refTokens(obj: unknown): TokenTree | null {
  if (typeof obj !== 'object' || obj === null) return null;
  const hit = refTokenCache.get(obj);
  if (hit) return hit;
  const r = obj as Record<string, unknown>;
  if (typeof r.id !== 'string' || typeof r.addr !== 'string' || !(r.key instanceof Uint8Array)) return null;
  const keys = Object.keys(r);
  const adm = r.admission;
  const n = adm === undefined ? 3 : 4;
  if (keys.length !== n || (adm !== undefined && !(adm instanceof Uint8Array))) return null;
  if (!keys.every((k) => k === 'id' || k === 'addr' || k === 'key' || k === 'admission')) return null;
  // RFC 8949 4.2.1 order: shorter encoded key first, then bytewise: id, key, addr, admission.
  const text = (v: string) => new Token(Type.string, v);
  const bytes = (v: Uint8Array) => new Token(Type.bytes, v);
  const tree: TokenTree[] = [
    new Token(Type.map, n),
    [text('id'), text(r.id)],
    [text('key'), bytes(r.key)],
    [text('addr'), text(r.addr)],
  ];
  if (adm instanceof Uint8Array) tree.push([text('admission'), bytes(adm)]);
  refTokenCache.set(obj, tree);
  return tree;
}

/** Strict decoding: minimal encodings only, no indefinite lengths, no undefined, no duplicate keys. */
const DECODE_OPTIONS = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  rejectDuplicateMapKeys: true,
};

/** CBOR text string "__proto__" (major type 3, length 9). */
const PROTO_TEXT = Buffer.from([0x69, ...Buffer.from('__proto__')]);

type DecodedToken = ReturnType<Tokenizer['next']>;

/**
 * A plain-object decoder would turn a map key "__proto__" into a prototype
 * change of the decoded object; such input is refused at the token level.
 */
class GuardedTokenizer {
  private readonly inner: Tokenizer;
  constructor(data: Uint8Array) {
    this.inner = new Tokenizer(data, DECODE_OPTIONS);
  }
  done(): boolean {
    return this.inner.done();
  }
  pos(): number {
    return this.inner.pos();
  }
  next(): DecodedToken {
    const t = this.inner.next();
    if (t.type.major === 3 && t.value === '__proto__') throw new Error('forbidden key __proto__');
    return t;
  }
}

/** Payloads are encoded into this scratch area first, so a frame costs one allocation of its exact size. */
const SCRATCH = Buffer.alloc(64 * 1024);
/** Larger payloads (replication batches) get a buffer of their own, grown until they fit, up to this. */
const MAX_FAST_BYTES = 16 * 1024 * 1024;

/** Encode a payload as deterministic CBOR. Throws (a local programming error) on values CBOR cannot carry. */
export function encodePayload(value: Payload): Uint8Array {
  const fast = encodeFast(value, SCRATCH, MAX_FAST_BYTES);
  return fast ? new Uint8Array(fast) : cborEncode(value, ENCODE_OPTIONS);
}

/** Decode untrusted CBOR bytes. Never throws. */
export function decodePayload(bytes: Uint8Array): Result<Payload> {
  // A plain Uint8Array view, so byte strings decode as Uint8Array copies rather than Buffers.
  const u8 = Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) : bytes;
  // The usual payload goes the direct way (cbor-fast.ts); anything outside its subset, malformed bytes included, to cborg.
  const fast = decodeFast(u8);
  if (fast !== FALLBACK) return ok(fast as Payload);
  try {
    // The token-level guard costs a wrapper call per token: only pay it when the text could be there.
    const suspicious = Buffer.from(u8.buffer, u8.byteOffset, u8.length).indexOf(PROTO_TEXT) >= 0;
    return ok(cborDecode(u8, suspicious ? { ...DECODE_OPTIONS, tokenizer: new GuardedTokenizer(u8) } : DECODE_OPTIONS));
  } catch (e) {
    // Includes RangeError from absurd nesting depth: the frame bound keeps this cheap.
    return fail(`bad CBOR: ${(e as Error).message}`);
  }
}

/** Size in bytes of the deterministic CBOR encoding of a payload. */
export function payloadSize(value: Payload): number {
  return encodePayload(value).length;
}

export const MSG_REQUEST = 1;
export const MSG_RESPONSE = 2;
export const MSG_ERROR = 3;
export const MSG_HELLO = 4;

/** Error kinds carried in an ERROR message. */
export const ERR_REFUSED = 1; // the handler threw: its message travels back
export const ERR_BUSY = 2; // the callee's in-flight bound was reached
export const ERR_NO_HANDLER = 3;
export const ERR_HELLO_REFUSED = 4; // connection-level: the caller's NodeRef was refused

export type RpcMessage =
  | { type: typeof MSG_REQUEST; id: number; method: string; payload: Payload }
  | { type: typeof MSG_RESPONSE; id: number; payload: Payload }
  | { type: typeof MSG_ERROR; id: number; kind: number; message: string; code?: string }
  | { type: typeof MSG_HELLO; ref: NodeRef };

export const MAX_METHOD_BYTES = 255;
export const MAX_ERROR_MESSAGE_CHARS = 1024;
const HEAD = 4; // frame length prefix, written here so one allocation holds the whole frame

/** Build a frame (length prefix included) around the encoded payload. */
function frame(type: number, id: number, extra: Uint8Array | null, extraByte: number, value: Payload): Buffer {
  const hasId = type !== MSG_HELLO;
  const headLen = 1 + (hasId ? 4 : 0) + (extra ? 1 + extra.length : 0) + (extraByte >= 0 ? 1 : 0);
  let payload: Uint8Array;
  const fast = encodeFast(value, SCRATCH, MAX_FAST_BYTES);
  if (fast) payload = fast;
  else
    try {
      payload = SCRATCH.subarray(0, encodeInto(value, SCRATCH, ENCODE_OPTIONS).written);
    } catch {
      payload = cborEncode(value, ENCODE_OPTIONS); // larger than the scratch area, or not encodable (then this throws)
    }
  const bodyLen = headLen + payload.length;
  const out = Buffer.allocUnsafe(HEAD + bodyLen);
  out.writeUInt32BE(bodyLen, 0);
  let o = HEAD;
  out[o++] = type;
  if (hasId) {
    out.writeUInt32BE(id >>> 0, o);
    o += 4;
  }
  if (extra) {
    out[o++] = extra.length;
    out.set(extra, o);
    o += extra.length;
  }
  if (extraByte >= 0) out[o++] = extraByte;
  out.set(payload, o);
  return out;
}

const methodCache = new Map<string, Buffer>();

function methodBytes(method: string): Buffer {
  let b = methodCache.get(method);
  if (b === undefined) {
    b = Buffer.from(method, 'utf8');
    if (b.length === 0 || b.length > MAX_METHOD_BYTES)
      throw new Error(`method name must be 1..${MAX_METHOD_BYTES} bytes`);
    if (methodCache.size < 1024) methodCache.set(method, b);
  }
  return b;
}

/** Encode a request as a complete frame (length prefix included). Throws on a bad method or unencodable payload. */
export function encodeRequest(id: number, method: string, payload: Payload): Buffer {
  return frame(MSG_REQUEST, id, methodBytes(method), -1, payload);
}

export function encodeResponse(id: number, payload: Payload): Buffer {
  return frame(MSG_RESPONSE, id, null, -1, payload);
}

export function encodeError(id: number, kind: number, message: string, code?: string): Buffer {
  const m = message.length > MAX_ERROR_MESSAGE_CHARS ? message.slice(0, MAX_ERROR_MESSAGE_CHARS) : message;
  return frame(MSG_ERROR, id, null, kind & 0xff, code === undefined ? { m } : { m, c: code });
}

export function encodeHello(ref: NodeRef): Buffer {
  const body: Record<string, unknown> = { id: ref.id, addr: ref.addr, key: ref.key };
  if (ref.admission !== undefined) body.admission = ref.admission;
  return frame(MSG_HELLO, 0, null, -1, body);
}

const HEX40 = /^[0-9a-f]{40}$/;

/** Check that an untrusted value has the shape of a NodeRef. */
export function asNodeRef(v: unknown): Result<NodeRef> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('NodeRef must be a map');
  const r = v as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (k !== 'id' && k !== 'addr' && k !== 'key' && k !== 'admission') return fail(`unexpected NodeRef field ${k}`);
  }
  if (typeof r.id !== 'string' || !HEX40.test(r.id)) return fail('NodeRef.id must be 40 lowercase hex');
  if (typeof r.addr !== 'string' || r.addr.length === 0 || r.addr.length > 300) return fail('bad NodeRef.addr');
  if (!(r.key instanceof Uint8Array) || r.key.length !== 32) return fail('NodeRef.key must be 32 bytes');
  if (r.admission !== undefined && !(r.admission instanceof Uint8Array)) return fail('bad NodeRef.admission');
  const ref: NodeRef = { id: r.id, addr: r.addr, key: r.key };
  if (r.admission !== undefined) ref.admission = r.admission as Uint8Array;
  return ok(ref);
}

/** Decode one frame body (without its length prefix). Never throws. */
export function decodeMessage(body: Uint8Array): Result<RpcMessage> {
  if (body.length < 1) return fail('empty message');
  const type = body[0];
  if (type === MSG_HELLO) {
    const p = decodePayload(body.subarray(1));
    if (!p.ok) return p;
    const ref = asNodeRef(p.value);
    return ref.ok ? ok({ type: MSG_HELLO, ref: ref.value }) : ref;
  }
  if (body.length < 5) return fail('truncated message header');
  const id = ((body[1] << 24) | (body[2] << 16) | (body[3] << 8) | body[4]) >>> 0;
  if (type === MSG_REQUEST) {
    if (body.length < 6) return fail('truncated request');
    const mlen = body[5];
    if (mlen === 0 || body.length < 6 + mlen) return fail('bad method length');
    const method = Buffer.from(body.buffer, body.byteOffset + 6, mlen).toString('utf8');
    const p = decodePayload(body.subarray(6 + mlen));
    return p.ok ? ok({ type: MSG_REQUEST, id, method, payload: p.value }) : p;
  }
  if (type === MSG_RESPONSE) {
    const p = decodePayload(body.subarray(5));
    return p.ok ? ok({ type: MSG_RESPONSE, id, payload: p.value }) : p;
  }
  if (type === MSG_ERROR) {
    if (body.length < 6) return fail('truncated error');
    const kind = body[5];
    const p = decodePayload(body.subarray(6));
    if (!p.ok) return p;
    const v = p.value as { m?: unknown; c?: unknown } | null;
    if (typeof v !== 'object' || v === null || typeof v.m !== 'string') return fail('bad error body');
    if (v.c !== undefined && typeof v.c !== 'string') return fail('bad error code');
    return ok({ type: MSG_ERROR, id, kind, message: v.m.slice(0, MAX_ERROR_MESSAGE_CHARS), code: v.c });
  }
  return fail(`unknown message type ${type}`);
}
