/**
 * Grammar of individual header values (RFC 3261 section 25.1): parameters,
 * name-addr / addr-spec, Via, CSeq, Contact, and typed accessors on a message.
 * Everything returns a Result; nothing throws on bad input.
 */
import { fail, ok, type Result } from '../util/errors.ts';
import { type CSeq, getHeader, getHeaders, type NameAddr, type SipMessage, type Via } from './message.ts';
import { formatHostPort, formatUri, parseHostPort, parseUri } from './uri.ts';

type Params = Array<[string, string | null]>;

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN_RE = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
const WS_RE = /[ \t]/;

const isWs = (c: string): boolean => c === ' ' || c === '\t';

/**
 * Strips SP and HT only (LWS after unfolding). String.prototype.trim would also
 * remove other Unicode spaces and U+FEFF, which are content in TEXT-UTF8.
 */
export function trimLws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * Splits at `sep` where the grammar allows it: not inside a quoted-string
 * (honouring backslash quoted-pairs) nor inside angle brackets. Elements are
 * trimmed; empty elements are dropped.
 */
export function splitTopLevel(s: string, sep: string): string[] {
  const out: string[] = [];
  if (s.indexOf('"') < 0 && s.indexOf('<') < 0) {
    for (const p of s.split(sep)) {
      const t = trimLws(p);
      if (t.length > 0) out.push(t);
    }
    return out;
  }
  let inQuote = false;
  let inAngle = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inQuote) {
      if (c === '\\') i++;
      else if (c === '"') inQuote = false;
    } else if (c === '"') inQuote = true;
    else if (c === '<') inAngle = true;
    else if (c === '>') inAngle = false;
    else if (c === sep && !inAngle) {
      const part = trimLws(s.slice(start, i));
      if (part.length > 0) out.push(part);
      start = i + 1;
    }
  }
  const last = trimLws(s.slice(start));
  if (last.length > 0) out.push(last);
  return out;
}

/** Parses a quoted-string starting at s[i] === '"'. Returns the unescaped text and the index after the closing quote. */
export function readQuoted(s: string, i: number): { text: string; end: number } | undefined {
  const close = s.indexOf('"', i + 1);
  if (close > 0) {
    const inner = s.slice(i + 1, close);
    if (inner.indexOf('\\') < 0 && inner.indexOf('\r') < 0 && inner.indexOf('\n') < 0)
      return { text: inner, end: close + 1 };
  }
  let text = '';
  for (let j = i + 1; j < s.length; j++) {
    const c = s[j];
    if (c === '\\') {
      if (j + 1 >= s.length) return undefined;
      const n = s.charCodeAt(j + 1);
      // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
      if (n === 0x0a || n === 0x0d || n > 0x7f) return undefined;
      text += s[j + 1];
      j++;
    } else if (c === '"') return { text, end: j + 1 };
    else if (c === '\r' || c === '\n') return undefined;
    else text += c;
  }
  return undefined;
}

export function quoteString(s: string): string {
  return '"' + s.replace(/(["\\])/g, '\\$1') + '"';
}

export const TOKEN_TABLE = new Uint8Array(128);
for (const ch of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~") {
  TOKEN_TABLE[ch.charCodeAt(0)] = 1;
}
/** gen-value = token / host / quoted-string: token characters plus ':' '[' ']' for IPv6 references. */
export const VALUE_TABLE = TOKEN_TABLE.slice();
for (const ch of ':[]') VALUE_TABLE[ch.charCodeAt(0)] = 1;

const inTable = (t: Uint8Array, c: number): boolean => c < 128 && t[c] === 1;

/** True when s[from, to) is a non-empty token. */
function isToken(s: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) if (!inTable(TOKEN_TABLE, s.charCodeAt(i))) return false;
  return true;
}

/** Index after the quoted-string starting at s[i] === '"', or -1 when unterminated. */
export function quotedEnd(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x5c) j++;
    else if (c === 0x22) return j + 1;
  }
  return -1;
}

/**
 * Parses `*( SEMI generic-param )`. `s` is what follows the address or
 * sent-by, so it must be empty or start with ';' (after LWS). Names are
 * lower-cased; quoted values keep their quotes so they format back unchanged.
 */
export function parseParams(s: string): Result<Params> {
  const out: Params = [];
  const n = s.length;
  let i = 0;
  while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
  while (i < n) {
    if (s.charCodeAt(i) !== 0x3b) return fail('malformed parameters');
    i++;
    while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
    const ns = i;
    while (i < n && inTable(TOKEN_TABLE, s.charCodeAt(i))) i++;
    if (i === ns) return fail('malformed parameter');
    const name = s.slice(ns, i).toLowerCase();
    while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
    let value: string | null = null;
    if (i < n && s.charCodeAt(i) === 0x3d) {
      i++;
      while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
      const vs = i;
      if (s.charCodeAt(i) === 0x22) {
        const e = quotedEnd(s, i);
        if (e < 0) return fail('malformed parameter');
        i = e;
      } else {
        while (i < n && inTable(VALUE_TABLE, s.charCodeAt(i))) i++;
        if (i === vs) return fail('malformed parameter');
      }
      value = s.slice(vs, i);
      while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
    }
    out.push([name, value]);
  }
  return ok(out);
}

export function formatParams(params: Params): string {
  let s = '';
  for (const [k, v] of params) s += v === null ? `;${k}` : `;${k}=${v}`;
  return s;
}

/**
 * name-addr / addr-spec with header parameters (From, To, Contact, Route,
 * Record-Route, Reply-To, Refer-To ...). RFC 3261 section 20.10: without angle
 * brackets, parameters after the URI belong to the header, not the URI.
 */
export function parseNameAddr(s: string): Result<NameAddr> {
  const t = trimLws(s);
  let displayName: string | undefined;
  let i = 0;
  if (t.startsWith('"')) {
    const q = readQuoted(t, 0);
    if (!q) return fail('malformed display name');
    displayName = q.text;
    i = q.end;
    while (i < t.length && isWs(t[i])) i++;
    if (t[i] !== '<') return fail('malformed name-addr');
  } else {
    const lt = t.indexOf('<');
    if (lt >= 0) {
      const dn = trimLws(t.slice(0, lt));
      // display-name = *(token LWS)
      if (dn.length > 0) {
        for (const w of dn.split(/[ \t]+/)) if (!TOKEN_RE.test(w)) return fail('malformed display name');
        displayName = dn;
      }
      i = lt;
    } else {
      // addr-spec: the URI runs to the first ';' (it may not contain one unbracketed).
      const semi = t.indexOf(';');
      const uriText = trimLws(semi < 0 ? t : t.slice(0, semi));
      // RFC 3261 section 20.10: a URI with a comma, question mark or semicolon must be in angle brackets.
      if (uriText.length === 0 || /[ \t,?]/.test(uriText)) return fail('malformed addr-spec');
      const uri = parseUri(uriText);
      if (!uri.ok) return uri;
      const params = parseParams(semi < 0 ? '' : t.slice(semi));
      if (!params.ok) return params;
      return ok({ uri: uri.value, params: params.value });
    }
  }
  const gt = t.indexOf('>', i);
  if (gt < 0) return fail('malformed name-addr');
  const uri = parseUri(t.slice(i + 1, gt));
  if (!uri.ok) return uri;
  const params = parseParams(t.slice(gt + 1));
  if (!params.ok) return params;
  const out: NameAddr = { uri: uri.value, params: params.value };
  if (displayName !== undefined) out.displayName = displayName;
  return ok(out);
}

export function formatNameAddr(n: NameAddr): string {
  const dn = n.displayName === undefined ? '' : quoteString(n.displayName) + ' ';
  return `${dn}<${formatUri(n.uri)}>${formatParams(n.params)}`;
}

const SENT_PROTOCOL_RE =
  /^([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*\/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*\/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+/;

/** via-parm = sent-protocol LWS sent-by *( SEMI via-params ) (RFC 3261 section 20.42, 25.1). */
export function parseVia(s: string): Result<Via> {
  const t = trimLws(s);
  let protocol: string;
  let transport: string;
  let rest: string;
  // Fast path for the usual spelling "SIP/2.0/UDP host..."; anything else goes through the full grammar.
  const sp = t.startsWith('SIP/2.0/') ? t.indexOf(' ', 8) : -1;
  if (sp > 8 && isToken(t, 8, sp)) {
    protocol = 'SIP/2.0';
    transport = t.slice(8, sp).toUpperCase();
    let i = sp + 1;
    while (i < t.length && (t.charCodeAt(i) === 0x20 || t.charCodeAt(i) === 0x09)) i++;
    rest = t.slice(i);
  } else {
    const m = SENT_PROTOCOL_RE.exec(t);
    if (!m) return fail('malformed Via');
    protocol = `${m[1].toUpperCase()}/${m[2]}`;
    transport = m[3].toUpperCase();
    rest = t.slice(m[0].length);
  }
  const semi = rest.indexOf(';');
  // sent-by = host [ COLON port ], where COLON may be surrounded by whitespace.
  let sentBy = semi < 0 ? rest : rest.slice(0, semi);
  if (sentBy.indexOf(' ') >= 0 || sentBy.indexOf('\t') >= 0) {
    sentBy = trimLws(sentBy.replace(/[ \t]*:[ \t]*(?=[0-9]*[ \t]*$)/, ':'));
  }
  if (WS_RE.test(sentBy)) return fail('malformed Via');
  const hp = parseHostPort(sentBy);
  if (!hp.ok) return fail('malformed Via');
  const params = parseParams(semi < 0 ? '' : rest.slice(semi));
  if (!params.ok) return fail('malformed Via');
  for (const [k, v] of params.value) {
    if (k === 'ttl' && (v === null || !/^[0-9]{1,3}$/.test(v) || Number(v) > 255)) return fail('malformed Via');
    if (k === 'rport' && v !== null && (!/^[0-9]{1,5}$/.test(v) || Number(v) > 65535)) return fail('malformed Via');
    if ((k === 'branch' || k === 'received' || k === 'maddr') && (v === null || v.startsWith('"'))) {
      return fail('malformed Via');
    }
  }
  const via: Via = {
    protocol,
    transport,
    host: hp.value.host,
    params: params.value,
  };
  if (hp.value.port !== undefined) via.port = hp.value.port;
  return ok(via);
}

export function formatVia(v: Via): string {
  return `${v.protocol}/${v.transport} ${formatHostPort(v.host, v.port)}${formatParams(v.params)}`;
}

/** CSeq = 1*DIGIT LWS Method; the number is below 2**31 (RFC 3261 section 8.1.1.5). */
export function parseCSeq(s: string): Result<CSeq> {
  // The usual spelling, "<digits> <METHOD>" with one space, read without a regular expression.
  const n = s.length;
  let i = 0;
  let num = 0;
  while (i < n && i < 10) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    num = num * 10 + c - 0x30;
    i++;
  }
  if (i > 0 && i < n && s.charCodeAt(i) === 0x20 && num < 2 ** 31 && isToken(s, i + 1, n)) {
    return ok({ seq: num, method: s.slice(i + 1) });
  }
  const m = /^[ \t]*([0-9]+)[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*$/.exec(s);
  if (!m) return fail('malformed CSeq');
  const seq = m[1].length > 12 ? Number.POSITIVE_INFINITY : Number(m[1]);
  if (seq >= 2 ** 31) return fail('CSeq number too large');
  return ok({ seq, method: m[2] });
}

export function formatCSeq(c: CSeq): string {
  return `${c.seq} ${c.method}`;
}

/** delta-seconds / 1*DIGIT values; undefined when not a number. */
export function parseUnsigned(s: string, max: number): number | undefined {
  const t = trimLws(s);
  if (!/^[0-9]+$/.test(t)) return undefined;
  const n = Number(t);
  return n > max ? undefined : n;
}

// ---- typed accessors on a parsed message ----

export function getVias(msg: SipMessage): Result<Via[]> {
  const out: Via[] = [];
  for (const v of getHeaders(msg, 'Via')) {
    const r = parseVia(v);
    if (!r.ok) return r;
    out.push(r.value);
  }
  if (out.length === 0) return fail('missing Via');
  return ok(out);
}

export function getTopVia(msg: SipMessage): Result<Via> {
  const v = getHeader(msg, 'Via');
  if (v === undefined) return fail('missing Via');
  return parseVia(v);
}

function getAddress(msg: SipMessage, name: string): Result<NameAddr> {
  const values = getHeaders(msg, name);
  if (values.length === 0) return fail(`missing ${name}`);
  if (values.length > 1) return fail(`multiple ${name} headers`);
  const r = parseNameAddr(values[0]);
  return r.ok ? r : fail(`malformed ${name}`);
}

export const getFrom = (msg: SipMessage): Result<NameAddr> => getAddress(msg, 'From');
export const getTo = (msg: SipMessage): Result<NameAddr> => getAddress(msg, 'To');

/** The `tag` header parameter of a From/To value. */
export function getTag(n: NameAddr): string | undefined {
  for (const [k, v] of n.params) if (k === 'tag') return v ?? undefined;
  return undefined;
}

export function getCallId(msg: SipMessage): string | undefined {
  return getHeader(msg, 'Call-ID');
}

export function getCSeq(msg: SipMessage): Result<CSeq> {
  const values = getHeaders(msg, 'CSeq');
  if (values.length === 0) return fail('missing CSeq');
  if (values.length > 1) return fail('multiple CSeq headers');
  return parseCSeq(values[0]);
}

/** Max-Forwards (0-255), or undefined when absent or malformed. */
export function getMaxForwards(msg: SipMessage): number | undefined {
  const v = getHeader(msg, 'Max-Forwards');
  return v === undefined ? undefined : parseUnsigned(v, 255);
}

/**
 * Expires header in seconds, or undefined when absent or malformed. Values
 * beyond 2**32-1 are clamped to it (RFC 3261 section 20.19, 25.1 delta-seconds).
 */
export function getExpires(msg: SipMessage): number | undefined {
  const v = getHeader(msg, 'Expires');
  if (v === undefined) return undefined;
  const t = trimLws(v);
  if (!/^[0-9]+$/.test(t)) return undefined;
  return Math.min(Number(t), 2 ** 32 - 1);
}

export function getContentLength(msg: SipMessage): number | undefined {
  const v = getHeader(msg, 'Content-Length');
  return v === undefined ? undefined : parseUnsigned(v, Number.MAX_SAFE_INTEGER);
}

/**
 * Contact values of a message: '*' for the wildcard (only valid alone,
 * RFC 3261 section 10.2.2), otherwise the list of addresses (maybe empty).
 */
export function parseContacts(msg: SipMessage): Result<'*' | NameAddr[]> {
  return parseContactValues(getHeaders(msg, 'Contact'));
}

/** parseContacts on the Contact values themselves. */
export function parseContactValues(values: string[]): Result<'*' | NameAddr[]> {
  if (values.some((v) => trimLws(v) === '*')) {
    return values.length === 1 ? ok('*') : fail('wildcard Contact mixed with other Contacts');
  }
  const out: NameAddr[] = [];
  for (const v of values) {
    const r = parseNameAddr(v);
    if (!r.ok) return fail('malformed Contact');
    out.push(r.value);
  }
  return ok(out);
}
