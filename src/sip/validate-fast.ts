/**
 * Conservative fast checks behind validateMessage: scanners over the header
 * values that allocate nothing and accept only the plain spellings phones
 * send (sip/sips URIs without escapes or URI headers, hostnames or IPv6
 * references, simple parameters). Each answers true only where the full
 * grammar (header-values.ts, uri.ts) accepts the same text; anything else
 * answers false and the caller runs the full grammar for the verdict and the
 * exact error. The fuzz tests hold them to that.
 */
import { canonicalName } from './compact.ts';
import { quotedEnd, TOKEN_TABLE, VALUE_TABLE } from './header-values.ts';
import type { SipMessage } from './message.ts';
import { PARAM_CHARS, USER_CHARS } from './uri.ts';

const isWs = (c: number): boolean => c === 0x20 || c === 0x09;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const inTable = (t: Uint8Array, c: number): boolean => c < 128 && t[c] === 1;
const ALNUM = new Uint8Array(128);
for (let c = 0; c < 128; c++) ALNUM[c] = (c >= 0x61 && c <= 0x7a) || isDigit(c) || (c >= 0x41 && c <= 0x5a) ? 1 : 0;
const isAlnum = (c: number): boolean => c < 128 && ALNUM[c] === 1;

/** User characters in an addr-spec, where a comma or question mark would need angle brackets (RFC 3261 20.10). */
const USER_IN_ADDR_SPEC = USER_CHARS.slice();
USER_IN_ADDR_SPEC[0x2c] = 0;
USER_IN_ADDR_SPEC[0x3f] = 0;

/** End of `host [":" port]` starting at s[i] (hostname, IPv4 or IPv6 reference), or -1 (RFC 3261 section 25.1). */
function hostPortEnd(s: string, i: number, to: number): number {
  if (s.charCodeAt(i) === 0x5b) {
    let j = i + 1;
    let colons = 0;
    for (; j < to; j++) {
      const c = s.charCodeAt(j);
      if (c === 0x3a) colons++;
      else if (!isHex(c) && c !== 0x2e) break;
    }
    if (j === i + 1 || colons === 0 || j >= to || s.charCodeAt(j) !== 0x5d) return -1;
    i = j + 1;
  } else {
    // hostname / IPv4address, as isHostnameAt judges it, in the same pass that finds its end.
    const h = i;
    let label = i;
    for (; i < to; i++) {
      const c = s.charCodeAt(i);
      if (c === 0x2e) {
        if (i === label || s.charCodeAt(i - 1) === 0x2d) return -1;
        label = i + 1;
      } else if (c === 0x2d) {
        if (i === label) return -1;
      } else if (!isAlnum(c)) break;
    }
    if (i === h || (label === i ? i - h <= 1 : s.charCodeAt(i - 1) === 0x2d)) return -1;
  }
  if (i < to && s.charCodeAt(i) === 0x3a) {
    const p = ++i;
    let port = 0;
    while (i < to && isDigit(s.charCodeAt(i))) port = port * 10 + s.charCodeAt(i++) - 0x30;
    if (i === p || i - p > 5 || port > 65535) return -1;
  }
  return i;
}

/** A sip/sips URI at s[from, to) with no escapes, password or headers (RFC 3261 section 19.1.1). */
export function fastSipUri(s: string, from: number, to: number, noCommaOrQuery = false): boolean {
  // "sip:" or "sips:", lower-case (anything else is left to parseUri).
  if (s.charCodeAt(from) !== 0x73 || s.charCodeAt(from + 1) !== 0x69 || s.charCodeAt(from + 2) !== 0x70) return false;
  let i = from + 3;
  if (s.charCodeAt(i) === 0x73) i++;
  if (s.charCodeAt(i) !== 0x3a) return false;
  i++;
  // The user part runs to the first '@' of the URI, as in parseUri.
  const at = s.indexOf('@', i);
  if (at >= 0 && at < to) {
    if (at === i) return false;
    const table = noCommaOrQuery ? USER_IN_ADDR_SPEC : USER_CHARS;
    for (; i < at; i++) if (!inTable(table, s.charCodeAt(i))) return false;
    i++;
  }
  i = hostPortEnd(s, i, to);
  if (i < 0) return false;
  while (i < to && s.charCodeAt(i) === 0x3b) {
    const n = ++i;
    while (i < to && inTable(PARAM_CHARS, s.charCodeAt(i))) i++;
    if (i === n) return false;
    if (i < to && s.charCodeAt(i) === 0x3d) {
      i++;
      while (i < to && inTable(PARAM_CHARS, s.charCodeAt(i))) i++;
    }
  }
  return i === to;
}

/** Index after the generic-param at s[i] (just after ';' and LWS), or -1; mirrors parseParams. */
function paramEnd(s: string, i: number, to: number): number {
  const n = i;
  while (i < to && inTable(TOKEN_TABLE, s.charCodeAt(i))) i++;
  if (i === n) return -1;
  while (i < to && isWs(s.charCodeAt(i))) i++;
  if (i < to && s.charCodeAt(i) === 0x3d) {
    i++;
    while (i < to && isWs(s.charCodeAt(i))) i++;
    if (s.charCodeAt(i) === 0x22) {
      i = quotedEnd(s, i);
      if (i < 0 || i > to) return -1;
    } else {
      const v = i;
      while (i < to && inTable(VALUE_TABLE, s.charCodeAt(i))) i++;
      if (i === v) return -1;
    }
    while (i < to && isWs(s.charCodeAt(i))) i++;
  }
  return i;
}

/** `*( SEMI generic-param )` over s[from, to): the same acceptance as parseParams. */
function fastParams(s: string, from: number, to: number): boolean {
  let i = from;
  while (i < to && isWs(s.charCodeAt(i))) i++;
  while (i < to) {
    if (s.charCodeAt(i) !== 0x3b) return false;
    i++;
    while (i < to && isWs(s.charCodeAt(i))) i++;
    i = paramEnd(s, i, to);
    if (i < 0) return false;
  }
  return true;
}

/** name-addr / addr-spec with header parameters (RFC 3261 section 20.10), the plain spellings. */
export function fastNameAddr(s: string): boolean {
  let a = 0;
  let b = s.length;
  while (a < b && isWs(s.charCodeAt(a))) a++;
  while (b > a && isWs(s.charCodeAt(b - 1))) b--;
  if (a === b) return false;
  let lt: number;
  if (s.charCodeAt(a) === 0x22) {
    const close = s.indexOf('"', a + 1);
    if (close < 0 || close >= b) return false;
    for (let k = a + 1; k < close; k++) {
      const c = s.charCodeAt(k);
      if (c === 0x5c || c === 0x0d || c === 0x0a) return false;
    }
    lt = close + 1;
    while (lt < b && isWs(s.charCodeAt(lt))) lt++;
    if (s.charCodeAt(lt) !== 0x3c) return false;
  } else {
    lt = s.indexOf('<', a);
    if (lt < 0 || lt >= b) {
      // addr-spec: the URI runs to the first ';', the rest are header parameters.
      let semi = s.indexOf(';', a);
      if (semi < 0 || semi > b) semi = b;
      return fastSipUri(s, a, semi, true) && fastParams(s, semi, b);
    }
    // display-name = *(token LWS)
    for (let k = a; k < lt; k++) {
      const c = s.charCodeAt(k);
      if (!inTable(TOKEN_TABLE, c) && !isWs(c)) return false;
    }
  }
  const gt = s.indexOf('>', lt);
  if (gt < 0 || gt >= b) return false;
  return fastSipUri(s, lt + 1, gt) && fastParams(s, gt + 1, b);
}

/** True when s[from, from + name.length) is `name` (lower-case). */
const nameIs = (s: string, from: number, to: number, name: string): boolean =>
  to - from === name.length && s.startsWith(name, from);

/** Digits-only s[from, to) of at most `maxDigits` digits, or -1. */
function digitsAt(s: string, from: number, to: number, maxDigits: number): number {
  if (to <= from || to - from > maxDigits) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!isDigit(c)) return -1;
    n = n * 10 + c - 0x30;
  }
  return n;
}

/** via-parm (RFC 3261 section 20.42) as parseVia accepts it, with its checks on ttl, rport, branch, received, maddr. */
export function fastVia(s: string): boolean {
  let a = 0;
  let b = s.length;
  while (a < b && isWs(s.charCodeAt(a))) a++;
  while (b > a && isWs(s.charCodeAt(b - 1))) b--;
  if (!s.startsWith('SIP/2.0/', a)) return false;
  const sp = s.indexOf(' ', a + 8);
  if (sp <= a + 8 || sp >= b) return false;
  for (let k = a + 8; k < sp; k++) if (!inTable(TOKEN_TABLE, s.charCodeAt(k))) return false;
  let i = sp + 1;
  while (i < b && isWs(s.charCodeAt(i))) i++;
  i = hostPortEnd(s, i, b);
  if (i < 0) return false;
  while (i < b) {
    if (s.charCodeAt(i) !== 0x3b) return false;
    i++;
    while (i < b && isWs(s.charCodeAt(i))) i++;
    // generic-param = token [ EQUAL gen-value ], as parseParams reads it; names are compared in lower case.
    const n = i;
    for (; i < b; i++) {
      const c = s.charCodeAt(i);
      if (!inTable(TOKEN_TABLE, c)) break;
      if (c >= 0x41 && c <= 0x5a) return false;
    }
    const ne = i;
    if (ne === n) return false;
    while (i < b && isWs(s.charCodeAt(i))) i++;
    let vs = -1;
    let ve = -1;
    if (i < b && s.charCodeAt(i) === 0x3d) {
      i++;
      while (i < b && isWs(s.charCodeAt(i))) i++;
      vs = i;
      if (s.charCodeAt(i) === 0x22) {
        i = quotedEnd(s, i);
        if (i < 0 || i > b) return false;
      } else {
        while (i < b && inTable(VALUE_TABLE, s.charCodeAt(i))) i++;
        if (i === vs) return false;
      }
      ve = i;
      while (i < b && isWs(s.charCodeAt(i))) i++;
    }
    if (nameIs(s, n, ne, 'ttl')) {
      const t = vs < 0 ? -1 : digitsAt(s, vs, ve, 3);
      if (t < 0 || t > 255) return false;
    } else if (nameIs(s, n, ne, 'rport')) {
      if (vs >= 0) {
        const p = digitsAt(s, vs, ve, 5);
        if (p < 0 || p > 65535) return false;
      }
    } else if (nameIs(s, n, ne, 'branch') || nameIs(s, n, ne, 'received') || nameIs(s, n, ne, 'maddr')) {
      if (vs < 0 || s.charCodeAt(vs) === 0x22) return false;
    }
  }
  return true;
}

/** CSeq = 1*DIGIT LWS Method below 2**31 (RFC 3261 section 8.1.1.5), with the request's method when given. */
export function fastCSeq(s: string, method: string | undefined): boolean {
  const n = s.length;
  let i = 0;
  while (i < n && isWs(s.charCodeAt(i))) i++;
  const d = i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  const seq = digitsAt(s, d, i, 10);
  if (seq < 0 || seq >= 2 ** 31 || i >= n || !isWs(s.charCodeAt(i))) return false;
  while (i < n && isWs(s.charCodeAt(i))) i++;
  const m = i;
  while (i < n && inTable(TOKEN_TABLE, s.charCodeAt(i))) i++;
  const me = i;
  if (me === m) return false;
  while (i < n && isWs(s.charCodeAt(i))) i++;
  if (i !== n) return false;
  return method === undefined || (me - m === method.length && s.startsWith(method, m));
}

/** Call-ID = word [ "@" word ]: printable ASCII without spaces (RFC 3261 section 25.1). */
function fastCallId(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** Lengths of the names of the headers validateMessage checks, compact forms included. */
const CHECKED_NAME_LENGTH = new Uint8Array(16);
for (const n of [1, 2, 3, 4, 7, 12]) CHECKED_NAME_LENGTH[n] = 1;

/**
 * True when validateMessage would accept the message, judged on the plain
 * spellings only; false means "run the full checks", not "invalid".
 */
export function fastValid(msg: SipMessage): boolean {
  if (msg.version !== 'SIP/2.0') return false;
  const request = msg.kind === 'request';
  if (request && !fastSipUri(msg.uri, 0, msg.uri.length)) return false;
  let vias = 0;
  let froms = 0;
  let tos = 0;
  let callIds = 0;
  let cseqs = 0;
  let maxForwards = 0;
  let expires = 0;
  const hs = msg.headers;
  for (let k = 0; k < hs.length; k++) {
    const h = hs[k];
    const v = h.value;
    switch (h.name) {
      case 'Via':
        if (!fastVia(v)) return false;
        vias++;
        break;
      case 'From':
        if (++froms > 1 || !fastNameAddr(v)) return false;
        break;
      case 'To':
        if (++tos > 1 || !fastNameAddr(v)) return false;
        break;
      case 'Call-ID':
        if (++callIds > 1 || !fastCallId(v)) return false;
        break;
      case 'CSeq':
        if (++cseqs > 1 || !fastCSeq(v, request ? msg.method : undefined)) return false;
        break;
      case 'Max-Forwards':
        if (request) {
          const mf = digitsAt(v, 0, v.length, 3);
          if (++maxForwards > 1 || mf < 0 || mf > 255) return false;
        }
        break;
      case 'Expires':
        if (++expires > 1 || digitsAt(v, 0, v.length, 15) < 0) return false;
        break;
      case 'Contact': {
        let i = 0;
        while (i < v.length && isWs(v.charCodeAt(i))) i++;
        // The wildcard has its own rules (RFC 3261 section 10.2.2): left to the full checks.
        if (v.charCodeAt(i) === 0x2a || !fastNameAddr(v)) return false;
        break;
      }
      default:
        // A checked header spelled other than canonically (only in hand-built messages).
        if (h.name.length < 16 && CHECKED_NAME_LENGTH[h.name.length] === 1 && canonicalName(h.name) !== h.name)
          return false;
    }
  }
  return vias > 0 && froms === 1 && tos === 1 && callIds === 1 && cseqs === 1;
}
