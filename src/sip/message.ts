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

/** First value of a header (case-insensitive), or undefined. */
export function getHeader(msg: SipMessage, name: string): string | undefined {
  const n = name.toLowerCase();
  for (const h of msg.headers) if (h.name.toLowerCase() === n) return h.value;
  return undefined;
}

/** Every value of a header in order. */
export function getHeaders(msg: SipMessage, name: string): string[] {
  const n = name.toLowerCase();
  const out: string[] = [];
  for (const h of msg.headers) if (h.name.toLowerCase() === n) out.push(h.value);
  return out;
}

/** Replace all values of a header with one value (appended at the position of the first, or at the end). */
export function setHeader(msg: SipMessage, name: string, value: string): void {
  const n = name.toLowerCase();
  const idx = msg.headers.findIndex((h) => h.name.toLowerCase() === n);
  msg.headers = msg.headers.filter((h) => h.name.toLowerCase() !== n);
  const at = idx >= 0 ? Math.min(idx, msg.headers.length) : msg.headers.length;
  msg.headers.splice(at, 0, { name, value });
}

export function removeHeader(msg: SipMessage, name: string): void {
  const n = name.toLowerCase();
  msg.headers = msg.headers.filter((h) => h.name.toLowerCase() !== n);
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
