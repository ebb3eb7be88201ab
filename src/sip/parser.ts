/**
 * SIP message parser (RFC 3261 section 7 and 25). Works on bytes: the header
 * block is located with indexOf on the buffer and decoded once (latin1 when
 * pure ASCII, UTF-8 otherwise); the body is copied as bytes and never decoded.
 *
 * Two levels:
 * - parseMessageRaw: framing and start line, header lines (folding, compact
 *   names, list splitting), Content-Length and body. Enough to answer with an
 *   error response when the content is bad.
 * - validateMessage: the checks that make a request answerable with 400 (or
 *   505): mandatory headers, their grammar, CSeq method, Request-URI.
 * parseMessage does both. None of them throws on any input.
 */
import { isAscii } from 'node:buffer';
import { fail, ok, type Result } from '../util/errors.ts';
import { canonicalName, canonicalNameAt, isListHeader, nameHash } from './compact.ts';
import {
  parseContactValues,
  parseCSeq,
  parseNameAddr,
  parseUnsigned,
  parseVia,
  splitTopLevel,
  TOKEN_RE,
  trimLws,
} from './header-values.ts';
import type { Header, SipMessage, SipRequest } from './message.ts';
import { parseRequestUri } from './uri.ts';

export interface ParseOptions {
  /**
   * Stream transports (TCP, TLS) frame by Content-Length, so it is mandatory
   * there (RFC 3261 section 18.3). Datagrams may omit it: the body is the rest.
   */
  stream?: boolean;
}

const CONTROL_RE = /[\r\n]/;
const CRLFCRLF = Buffer.from('\r\n\r\n');
const LFLF = Buffer.from('\n\n');

export function asBuffer(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Index of the first byte after any leading CRLFs (RFC 3261 section 7.5). */
export function skipLeadingCrlf(b: Uint8Array, from = 0): number {
  let i = from;
  while (i < b.length && (b[i] === 0x0d || b[i] === 0x0a)) i++;
  return i;
}

/**
 * Finds the end of the header block. Returns the offset of the empty line's
 * terminator and the body offset, or undefined. A bare-LF message is accepted
 * only when no CRLFCRLF occurs at all (tolerance for broken senders).
 */
export function findHeaderEnd(b: Buffer, from: number): { headEnd: number; bodyStart: number } | undefined {
  const i = b.indexOf(CRLFCRLF, from);
  if (i >= 0) return { headEnd: i, bodyStart: i + 4 };
  const j = b.indexOf(LFLF, from);
  if (j >= 0) return { headEnd: j, bodyStart: j + 2 };
  return undefined;
}

export function decodeHead(b: Buffer, start: number, end: number): string {
  const head = b.subarray(start, end);
  return isAscii(head) ? head.toString('latin1') : head.toString('utf8');
}

export type StartLine =
  | { kind: 'request'; method: string; uri: string; version: string }
  | { kind: 'response'; version: string; status: number; reason: string };

/**
 * Request-Line = Method SP Request-URI SP SIP-Version;
 * Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 section 7.1, 7.2).
 * The Request-URI is taken as everything between the first and the last SP;
 * validateMessage refuses it if it is not a URI.
 */
function parseStartLine(line: string): Result<StartLine> {
  if (line.startsWith('SIP/')) {
    const sp1 = line.indexOf(' ');
    if (sp1 < 0) return fail('malformed Status-Line');
    const version = line.slice(0, sp1);
    const sp2 = line.indexOf(' ', sp1 + 1);
    const code = sp2 < 0 ? line.slice(sp1 + 1) : line.slice(sp1 + 1, sp2);
    if (!/^[1-6][0-9][0-9]$/.test(code)) return fail('bad status code');
    const reason = sp2 < 0 ? '' : line.slice(sp2 + 1);
    if (CONTROL_RE.test(reason)) return fail('malformed Reason-Phrase');
    return ok({ kind: 'response', version, status: Number(code), reason });
  }
  // Extra SP between the elements or at the end of the line is tolerated and
  // not kept (RFC 4475 sections 3.1.2.9 and 3.1.2.10 allow a liberal element to do so).
  const t = trimLws(line);
  const sp1 = t.indexOf(' ');
  const sp2 = t.lastIndexOf(' ');
  if (sp1 <= 0 || sp2 === sp1) return fail('malformed Request-Line');
  const method = t.slice(0, sp1);
  if (!TOKEN_RE.test(method)) return fail('malformed method');
  const version = t.slice(sp2 + 1);
  if (!/^SIP\/[0-9]+\.[0-9]+$/i.test(version)) return fail('malformed SIP version');
  const uri = trimLws(t.slice(sp1 + 1, sp2));
  if (uri.length === 0) return fail('malformed Request-Line');
  return ok({ kind: 'request', method, uri, version });
}

/** token characters (RFC 3261 section 25.1) as a lookup table. */
const TOKEN_CHARS = new Uint8Array(128);
for (const ch of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~") {
  TOKEN_CHARS[ch.charCodeAt(0)] = 1;
}

/** Pushes one header value onto `out`, splitting list headers at top-level commas. */
function pushHeader(name: string, value: string, out: Header[]): void {
  if (value.indexOf(',') >= 0 && isListHeader(name)) {
    const parts = splitTopLevel(value, ',');
    if (parts.length === 0) out.push({ name, value: '' });
    for (const p of parts) out.push({ name, value: p });
  } else out.push({ name, value });
}

/**
 * Parses the header block text (start line + header lines, without the final
 * empty line). Works on offsets into the one decoded string; a line is only
 * copied when it is folded.
 */
export function parseHead(head: string): Result<{ start: StartLine; headers: Header[] }> {
  // Lines end in CRLF; a head without any CR is taken as bare-LF (tolerance for broken senders).
  const eol = head.indexOf('\r') >= 0 || head.indexOf('\n') < 0 ? '\r\n' : '\n';
  const step = eol.length;
  const len = head.length;
  let lineEnd = head.indexOf(eol);
  if (lineEnd < 0) lineEnd = len;
  const start = parseStartLine(head.slice(0, lineEnd));
  if (!start.ok) return start;
  const headers: Header[] = [];
  let pos = lineEnd + step;
  while (pos < len) {
    lineEnd = head.indexOf(eol, pos);
    if (lineEnd < 0) lineEnd = len;
    // header-name HCOLON: whitespace may precede the colon (RFC 3261 section 25.1).
    let i = pos;
    let hash = 0;
    while (i < lineEnd) {
      const c = head.charCodeAt(i);
      if (c >= 128 || TOKEN_CHARS[c] === 0) break;
      hash = nameHash(hash, c);
      i++;
    }
    if (i === pos) {
      const c = head.charCodeAt(pos);
      return fail(c === 0x20 || c === 0x09 ? 'malformed header folding' : 'malformed header name');
    }
    const name = canonicalNameAt(head, pos, i, hash) ?? canonicalName(head.slice(pos, i));
    while (i < lineEnd && (head.charCodeAt(i) === 0x20 || head.charCodeAt(i) === 0x09)) i++;
    if (head.charCodeAt(i) !== 0x3a) return fail(i === lineEnd ? 'malformed header line' : 'malformed header name');
    // Value without its surrounding LWS, copied once.
    i++;
    while (i < lineEnd && (head.charCodeAt(i) === 0x20 || head.charCodeAt(i) === 0x09)) i++;
    let e = lineEnd;
    while (e > i && (head.charCodeAt(e - 1) === 0x20 || head.charCodeAt(e - 1) === 0x09)) e--;
    let value = head.slice(i, e);
    pos = lineEnd + step;
    // Folded continuation lines: LWS = [*WSP CRLF] 1*WSP is equivalent to one SP (RFC 3261 section 7.3.1).
    while (pos < len && (head.charCodeAt(pos) === 0x20 || head.charCodeAt(pos) === 0x09)) {
      lineEnd = head.indexOf(eol, pos);
      if (lineEnd < 0) lineEnd = len;
      const more = trimLws(head.slice(pos, lineEnd));
      value = value.length === 0 ? more : more.length === 0 ? value : `${value} ${more}`;
      pos = lineEnd + step;
    }
    // A bare CR or LF inside a line would let a value smuggle in another line on
    // re-serialisation. Other control octets can appear legally in quoted-pairs
    // (RFC 3261 section 25.1, RFC 4475 section 3.1.1.2).
    if (value.indexOf('\r') >= 0 || value.indexOf('\n') >= 0) return fail('malformed header value');
    pushHeader(name, value, headers);
  }
  return ok({ start: start.value, headers });
}

/** Content-Length of a header list: undefined when absent, an error string when malformed or inconsistent. */
export function contentLengthOf(headers: Header[]): number | undefined | string {
  let len: number | undefined;
  for (const h of headers) {
    if (h.name !== 'Content-Length') continue;
    const n = parseUnsigned(h.value, Number.MAX_SAFE_INTEGER);
    if (n === undefined) return 'bad Content-Length';
    if (len !== undefined && len !== n) return 'conflicting Content-Length';
    len = n;
  }
  return len;
}

/**
 * Parses one message from a datagram or an exact stream frame without the
 * semantic checks of validateMessage.
 */
export function parseMessageRaw(input: Uint8Array, opts: ParseOptions = {}): Result<SipMessage> {
  const b = asBuffer(input);
  const from = skipLeadingCrlf(b);
  if (from >= b.length) return fail('empty message');
  const end = findHeaderEnd(b, from);
  if (!end) return fail('missing end of headers');
  const head = parseHead(decodeHead(b, from, end.headEnd));
  if (!head.ok) return head;
  const { start, headers } = head.value;
  const cl = contentLengthOf(headers);
  if (typeof cl === 'string') return fail(cl);
  const available = b.length - end.bodyStart;
  let bodyLen: number;
  if (cl === undefined) {
    if (opts.stream) return fail('missing Content-Length');
    bodyLen = available;
  } else {
    // RFC 3261 section 18.3: a shorter body is an error; extra bytes are discarded.
    if (cl > available) return fail('Content-Length larger than body');
    bodyLen = cl;
  }
  return ok(messageFrom(start, headers, copyBody(b, end.bodyStart, bodyLen)));
}

/**
 * A private copy of the body bytes as a plain Uint8Array (never a view of the
 * caller's buffer, which a transport may reuse). Small bodies come from
 * Buffer's shared pool, which is much cheaper than a fresh ArrayBuffer.
 */
export function copyBody(src: Uint8Array, from: number, len: number): Uint8Array {
  if (len === 0) return new Uint8Array(0);
  const c = Buffer.allocUnsafe(len);
  c.set(src.subarray(from, from + len));
  return new Uint8Array(c.buffer, c.byteOffset, len);
}

/** Assembles the model from a parsed head and the body bytes. */
export function messageFrom(start: StartLine, headers: Header[], body: Uint8Array): SipMessage {
  if (start.kind === 'request') {
    return { kind: 'request', method: start.method, uri: start.uri, version: start.version, headers, body };
  }
  return { kind: 'response', status: start.status, reason: start.reason, version: start.version, headers, body };
}

/**
 * Checks a parsed message against what RFC 3261 section 8.1.1 requires of
 * every request (To, From, CSeq, Call-ID, Max-Forwards, Via) and of every
 * response (the same minus Max-Forwards), with their grammar. The error names
 * the problem and is meant as the reason phrase of a 400 (see errorStatus).
 */
export function validateMessage(msg: SipMessage): Result<SipMessage> {
  if (msg.version !== 'SIP/2.0' && !/^SIP\/2\.0$/i.test(msg.version)) return fail('unsupported SIP version');
  if (msg.kind === 'request') {
    const uri = parseRequestUri(msg.uri);
    if (!uri.ok) return fail(uri.error);
  }
  // One pass over the headers; names from the parser are canonical already.
  let vias = 0;
  const from: string[] = [];
  const to: string[] = [];
  const callIds: string[] = [];
  const cseqs: string[] = [];
  const maxForwards: string[] = [];
  const expires: string[] = [];
  const contacts: string[] = [];
  for (const h of msg.headers) {
    switch (canonicalName(h.name)) {
      case 'Via':
        if (!parseVia(h.value).ok) return fail('malformed Via');
        vias++;
        break;
      case 'From':
        from.push(h.value);
        break;
      case 'To':
        to.push(h.value);
        break;
      case 'Call-ID':
        callIds.push(h.value);
        break;
      case 'CSeq':
        cseqs.push(h.value);
        break;
      case 'Max-Forwards':
        maxForwards.push(h.value);
        break;
      case 'Expires':
        expires.push(h.value);
        break;
      case 'Contact':
        contacts.push(h.value);
        break;
    }
  }
  if (vias === 0) return fail('missing Via');
  for (const [name, values] of [
    ['From', from],
    ['To', to],
  ] as const) {
    if (values.length === 0) return fail(`missing ${name}`);
    if (values.length > 1) return fail(`multiple ${name} headers`);
    if (!parseNameAddr(values[0]).ok) return fail(`malformed ${name}`);
  }
  if (callIds.length === 0) return fail('missing Call-ID');
  // Call-ID = word [ "@" word ] (RFC 3261 section 25.1)
  if (callIds.length > 1 || !/^[!-~]+$/.test(callIds[0])) return fail('malformed Call-ID');
  if (cseqs.length === 0) return fail('missing CSeq');
  if (cseqs.length > 1) return fail('multiple CSeq headers');
  const cseq = parseCSeq(cseqs[0]);
  if (!cseq.ok) return cseq;
  if (msg.kind === 'request') {
    // RFC 3261 section 8.2: the CSeq method must match the request method.
    if (cseq.value.method !== msg.method) return fail('CSeq method does not match');
    // Max-Forwards is mandatory for a UAC, but a UAS SHOULD accept requests
    // without it from older elements (RFC 3261 section 8.1.1.6); when present it must be 0-255.
    if (maxForwards.length > 1 || (maxForwards.length === 1 && parseUnsigned(maxForwards[0], 255) === undefined)) {
      return fail('malformed Max-Forwards');
    }
  }
  if (expires.length > 1 || (expires.length === 1 && parseUnsigned(expires[0], Number.MAX_VALUE) === undefined)) {
    return fail('malformed Expires');
  }
  const c = parseContactValues(contacts);
  if (!c.ok) return c;
  return ok(msg);
}

/** true when validateMessage accepts the request. */
export function isValidRequest(req: SipRequest): boolean {
  return validateMessage(req).ok;
}

/** Parses and validates one message. Never throws; errors name the problem. */
export function parseMessage(buf: Uint8Array, opts: ParseOptions = {}): Result<SipMessage> {
  const r = parseMessageRaw(buf, opts);
  if (!r.ok) return r;
  return validateMessage(r.value);
}

/** The status to answer a request refused with this error (RFC 3261 section 8.2, 21.5.6). */
export function errorStatus(error: string): number {
  if (error === 'unsupported SIP version') return 505;
  if (error === 'message too large') return 513;
  return 400;
}
