/**
 * The SIP message model shared by the parser, serializer, transports,
 * transactions and the elements above (registrar, redirect server, adapter).
 *
 * Headers are kept in wire order as (name, value) pairs. `name` is the
 * canonical long form (compact forms such as `v`, `i`, `m` are expanded by the
 * parser); lookups are case-insensitive. A header line whose grammar allows a
 * comma-separated list is split into one entry per element by the parser, so
 * `Via: a, b` becomes two `Via` entries; Authorization-type headers are never split.
 */

export interface SipUri {
  /** Lower-case scheme: 'sip', 'sips', 'tel', or another absolute-URI scheme. */
  scheme: string;
  /** Unescaped user part, if any. */
  user?: string;
  password?: string;
  /** Host as written, IPv6 references keep their brackets: `[2001:db8::1]`. Lower-cased. */
  host: string;
  port?: number;
  /** URI parameters in order; a parameter without `=` has value null. Names lower-cased. */
  params: Array<[string, string | null]>;
  /** URI headers (`?a=b&c=d`), unescaped. */
  headers: Array<[string, string]>;
  /** For non-SIP schemes: everything after the colon, verbatim. */
  opaque?: string;
}

export interface NameAddr {
  displayName?: string;
  uri: SipUri;
  /** Header parameters after the address (e.g. `tag`, `expires`, `q`). Names lower-cased. */
  params: Array<[string, string | null]>;
}

export interface Via {
  /** e.g. 'SIP/2.0' */
  protocol: string;
  /** Upper-case transport: 'UDP', 'TCP', 'TLS', ... */
  transport: string;
  host: string;
  port?: number;
  params: Array<[string, string | null]>;
}

export interface CSeq {
  seq: number;
  method: string;
}

export interface Header {
  name: string;
  value: string;
}

interface MessageBase {
  /** 'SIP/2.0' as received. */
  version: string;
  headers: Header[];
  /** Body bytes; Content-Length counts these bytes. */
  body: Uint8Array;
}

export interface SipRequest extends MessageBase {
  kind: 'request';
  /** Upper-case as on the wire (methods are case-sensitive). */
  method: string;
  /** Request-URI exactly as received. */
  uri: string;
}

export interface SipResponse extends MessageBase {
  kind: 'response';
  status: number;
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

/**
 * Header names compare without regard to ASCII case (RFC 3261 section 7.3.5), here without allocating: names
 * from the parser are canonical already, so the exact comparison almost always decides.
 */
export function sameName(a: string, lower: string): boolean {
  // Only U+0130 changes length when lower-cased, into "i" U+0307.
  if (a.length !== lower.length) return lower.indexOf('\u0307') >= 0 && a.toLowerCase() === lower;
  for (let i = 0; i < a.length; i++) {
    let c = a.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    else if (c >= 0x80) return a.toLowerCase() === lower;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** First value of a header (case-insensitive), or undefined. */
export function getHeader(msg: SipMessage, name: string): string | undefined {
  let n: string | undefined;
  const hs = msg.headers;
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i];
    if (h.name === name) return h.value;
    n ??= name.toLowerCase();
    if (sameName(h.name, n)) return h.value;
  }
  return undefined;
}

/** Every value of a header in order. */
export function getHeaders(msg: SipMessage, name: string): string[] {
  let n: string | undefined;
  const out: string[] = [];
  const hs = msg.headers;
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i];
    if (h.name === name) out.push(h.value);
    else {
      n ??= name.toLowerCase();
      if (sameName(h.name, n)) out.push(h.value);
    }
  }
  return out;
}

/** Replace all values of a header with one value (appended at the position of the first, or at the end). */
export function setHeader(msg: SipMessage, name: string, value: string): void {
  const n = name.toLowerCase();
  const idx = msg.headers.findIndex((h) => sameName(h.name, n));
  msg.headers = msg.headers.filter((h) => !sameName(h.name, n));
  const at = idx >= 0 ? Math.min(idx, msg.headers.length) : msg.headers.length;
  msg.headers.splice(at, 0, { name, value });
}

export function removeHeader(msg: SipMessage, name: string): void {
  const n = name.toLowerCase();
  msg.headers = msg.headers.filter((h) => !sameName(h.name, n));
}

export function getParam(params: Array<[string, string | null]>, name: string): string | null | undefined {
  const n = name.toLowerCase();
  for (const [k, v] of params) if (k === n) return v;
  return undefined;
}

export function hasParam(params: Array<[string, string | null]>, name: string): boolean {
  return getParam(params, name) !== undefined;
}

export function setParam(params: Array<[string, string | null]>, name: string, value: string | null): void {
  const n = name.toLowerCase();
  const i = params.findIndex(([k]) => k === n);
  if (i >= 0) params[i] = [n, value];
  else params.push([n, value]);
}
