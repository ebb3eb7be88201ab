/**
 * SIP / SIPS URI grammar (RFC 3261 section 19.1 and 25.1) and other absolute
 * URIs (kept opaque). Parsing never throws; it returns a Result.
 */
import { fail, ok, type Result } from '../util/errors.ts';
import type { SipUri } from './message.ts';

// Character classes of RFC 3261 section 25.1, as 128-entry lookup tables.
function charTable(extra: string): Uint8Array {
  const t = new Uint8Array(128);
  for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  for (const ch of "-_.!~*'()") t[ch.charCodeAt(0)] = 1; // mark
  for (const ch of extra) t[ch.charCodeAt(0)] = 1;
  return t;
}

export const USER_CHARS = charTable('&=+$,;?/'); // unreserved / user-unreserved
const PASSWORD_CHARS = charTable('&=+$,');
export const PARAM_CHARS = charTable('[]/:&+$'); // unreserved / param-unreserved
const HEADER_CHARS = charTable('[]/?:+$'); // unreserved / hnv-unreserved
const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*$/;
const IPV6_RE = /^\[[0-9A-Fa-f:.]+\]$/;

/** hostname / IPv4address (RFC 3261 section 25.1): dot-separated labels of alphanumerics and inner hyphens. */
function isHostname(s: string): boolean {
  return isHostnameAt(s, 0, s.length);
}

/** isHostname on s[from, to), without copying. */
export function isHostnameAt(s: string, from: number, to: number): boolean {
  if (to <= from) return false;
  let labelStart = from;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (i === labelStart || s.charCodeAt(i - 1) === 0x2d) return false;
      labelStart = i + 1;
      continue;
    }
    const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (alnum) continue;
    if (c !== 0x2d || i === labelStart) return false;
  }
  // A final empty label is the root dot ("example.com."); otherwise the last label must not end in '-'.
  return labelStart === to ? to - from > 1 : s.charCodeAt(to - 1) !== 0x2d;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Checks that every character is in the class or a valid %XX escape. */
function validChars(s: string, table: Uint8Array): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      if (i + 2 >= s.length) return false;
      if (!isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) return false;
      i += 2;
      continue;
    }
    if (c >= 128 || table[c] === 0) return false;
  }
  return true;
}

/** Decodes %XX escapes; escapes that do not form UTF-8 are decoded byte for byte. */
export function unescapeUri(s: string): string {
  if (s.indexOf('%') < 0) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
  }
}

/** Escapes every character outside the class as UTF-8 %XX. */
function escapeWith(s: string, table: Uint8Array): string {
  let simple = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || table[c] === 0) {
      simple = false;
      break;
    }
  }
  if (simple) return s;
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b < 128 && table[b] === 1) out += String.fromCharCode(b);
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export const escapeUser = (s: string): string => escapeWith(s, USER_CHARS);
export const escapeParam = (s: string): string => escapeWith(s, PARAM_CHARS);

/** Parses `host[:port]` where host may be an IPv6 reference. Lower-cases the host. */
export function parseHostPort(s: string): Result<{ host: string; port?: number }> {
  let host: string;
  let portStr: string | undefined;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) return fail('malformed IPv6 reference');
    host = s.slice(0, close + 1);
    const tail = s.slice(close + 1);
    if (tail.length > 0) {
      if (tail[0] !== ':') return fail('malformed host');
      portStr = tail.slice(1);
    }
    if (!IPV6_RE.test(host) || host.indexOf(':') < 0) return fail('malformed IPv6 reference');
  } else {
    const colon = s.indexOf(':');
    host = colon < 0 ? s : s.slice(0, colon);
    if (colon >= 0) portStr = s.slice(colon + 1);
    if (!isHostname(host)) return fail('malformed host');
  }
  if (portStr === undefined) return ok({ host: host.toLowerCase() });
  if (portStr.length === 0 || portStr.length > 5) return fail('malformed port');
  let port = 0;
  for (let i = 0; i < portStr.length; i++) {
    const d = portStr.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return fail('malformed port');
    port = port * 10 + d;
  }
  if (port > 65535) return fail('malformed port');
  return ok({ host: host.toLowerCase(), port });
}

/** `name[=value]` pairs separated by `sep`; used for URI parameters and headers. */
function parsePairs(
  s: string,
  sep: string,
  table: Uint8Array,
  what: string,
  lowerNames: boolean,
): Result<Array<[string, string | null]>> {
  const out: Array<[string, string | null]> = [];
  for (const part of s.split(sep)) {
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? null : part.slice(eq + 1);
    if (rawName.length === 0 || !validChars(rawName, table)) return fail(`malformed URI ${what}`);
    if (rawValue !== null && !validChars(rawValue, table)) return fail(`malformed URI ${what}`);
    const name = unescapeUri(rawName);
    out.push([lowerNames ? name.toLowerCase() : name, rawValue === null ? null : unescapeUri(rawValue)]);
  }
  return ok(out);
}

/**
 * Parses an absolute URI. `sip:` and `sips:` get the full RFC 3261 section
 * 19.1.1 grammar; other schemes (tel, urn, http, ...) keep their text opaque.
 */
export function parseUri(s: string): Result<SipUri> {
  const colon = s.indexOf(':');
  if (colon <= 0) return fail('malformed URI');
  const scheme = s.slice(0, colon);
  const lower = scheme === 'sip' || scheme === 'sips' ? scheme : scheme.toLowerCase();
  if (lower !== scheme || (lower !== 'sip' && lower !== 'sips')) {
    if (!SCHEME_RE.test(scheme)) return fail('malformed URI scheme');
  }
  const rest = s.slice(colon + 1);
  if (lower !== 'sip' && lower !== 'sips') {
    // RFC 3986 absolute-URI: no whitespace, controls, quotes or angle brackets.
    if (rest.length === 0 || /[\s\x00-\x1f\x7f<>"]/.test(rest)) return fail('malformed URI');
    return ok({ scheme: lower, host: '', params: [], headers: [], opaque: rest });
  }
  const uri: SipUri = { scheme: lower, host: '', params: [], headers: [] };
  let hostPart = rest;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    hostPart = rest.slice(at + 1);
    const pc = userinfo.indexOf(':');
    const user = pc < 0 ? userinfo : userinfo.slice(0, pc);
    if (user.length === 0 || !validChars(user, USER_CHARS)) return fail('malformed URI user');
    uri.user = unescapeUri(user);
    if (pc >= 0) {
      const password = userinfo.slice(pc + 1);
      if (!validChars(password, PASSWORD_CHARS)) return fail('malformed URI password');
      uri.password = unescapeUri(password);
    }
  }
  let end = hostPart.length;
  const semi = hostPart.indexOf(';');
  const q = hostPart.indexOf('?');
  if (semi >= 0) end = semi;
  if (q >= 0 && q < end) end = q;
  const hp = parseHostPort(hostPart.slice(0, end));
  if (!hp.ok) return hp;
  uri.host = hp.value.host;
  if (hp.value.port !== undefined) uri.port = hp.value.port;
  if (semi >= 0 && semi === end) {
    const paramsEnd = q > semi ? q : hostPart.length;
    const params = parsePairs(hostPart.slice(semi + 1, paramsEnd), ';', PARAM_CHARS, 'parameter', true);
    if (!params.ok) return params;
    uri.params = params.value;
  }
  if (q >= 0) {
    const headers = parsePairs(hostPart.slice(q + 1), '&', HEADER_CHARS, 'header', false);
    if (!headers.ok) return headers;
    for (const [k, v] of headers.value) {
      if (v === null) return fail('malformed URI header');
      uri.headers.push([k, v]);
    }
  }
  return ok(uri);
}

/**
 * A Request-URI (RFC 3261 section 25.1 Request-Line). It is the URI alone, so
 * it cannot contain whitespace or angle brackets, and a SIP URI there may not
 * carry a headers component (RFC 3261 section 19.1.1, table 1).
 */
export function parseRequestUri(s: string): Result<SipUri> {
  if (s.length === 0 || /[\s<>]/.test(s)) return fail('malformed Request-URI');
  const r = parseUri(s);
  if (!r.ok) return fail('malformed Request-URI');
  if (r.value.opaque === undefined && r.value.headers.length > 0) return fail('headers not allowed in Request-URI');
  return r;
}

/**
 * URI parameters that never match when only one of two URIs has them (RFC 3261 19.1.4): user, ttl, method and
 * maddr by the rules, transport by the section's own example (`sip:bob@biloxi.com` is not
 * `sip:bob@biloxi.com;transport=udp`: "can resolve to different ports and transports").
 */
const MUST_MATCH_PARAMS = ['transport', 'user', 'ttl', 'method', 'maddr'];

/**
 * URI equivalence of RFC 3261 19.1.4 (used by the registrar to tell bindings apart, 10.3 step 7): scheme, user
 * and password compare exactly (after unescaping), host case-insensitively, a port must be present in both or
 * neither; "Any uri-parameter appearing in both URIs must match", a user, ttl, method or maddr parameter in only
 * one never matches (nor transport, see above), other parameters in only one are ignored; header components
 * must all match.
 */
export function sipUriEquals(a: SipUri, b: SipUri): boolean {
  if (a.scheme !== b.scheme) return false;
  if (a.opaque !== undefined || b.opaque !== undefined) return a.opaque === b.opaque;
  if (a.user !== b.user || a.password !== b.password || a.port !== b.port) return false;
  if (a.host.toLowerCase() !== b.host.toLowerCase()) return false;
  for (const [name, va] of a.params) {
    const pb = b.params.find(([n]) => n === name);
    if (pb === undefined) {
      if (MUST_MATCH_PARAMS.includes(name)) return false;
    } else if ((va ?? '').toLowerCase() !== (pb[1] ?? '').toLowerCase()) return false;
  }
  for (const [name] of b.params)
    if (MUST_MATCH_PARAMS.includes(name) && !a.params.some(([n]) => n === name)) return false;
  if (a.headers.length !== b.headers.length) return false;
  for (const [name, va] of a.headers)
    if (!b.headers.some(([n, vb]) => n.toLowerCase() === name.toLowerCase() && vb === va)) return false;
  return true;
}

export function formatHostPort(host: string, port?: number): string {
  return port === undefined ? host : `${host}:${port}`;
}

export function formatUri(u: SipUri): string {
  if (u.opaque !== undefined) return `${u.scheme}:${u.opaque}`;
  let s = `${u.scheme}:`;
  if (u.user !== undefined) {
    s += escapeWith(u.user, USER_CHARS);
    if (u.password !== undefined) s += ':' + escapeWith(u.password, PASSWORD_CHARS);
    s += '@';
  }
  s += formatHostPort(u.host, u.port);
  for (const [k, v] of u.params) {
    s += ';' + escapeWith(k, PARAM_CHARS);
    if (v !== null) s += '=' + escapeWith(v, PARAM_CHARS);
  }
  if (u.headers.length > 0) {
    s += '?' + u.headers.map(([k, v]) => `${escapeWith(k, HEADER_CHARS)}=${escapeWith(v, HEADER_CHARS)}`).join('&');
  }
  return s;
}
