/**
 * SIP message parser (RFC 3261 section 7 and 25). Works on bytes: the header
 * block is located with indexOf on the buffer and decoded once as UTF-8; the
 * body is copied as bytes and never decoded.
 *
 * Two levels:
 * - parseMessageRaw: framing and start line, header lines (folding, compact
 *   names, list splitting), Content-Length and body. Enough to answer with an
 *   error response when the content is bad.
 * - validateMessage: the checks that make a request answerable with 400 (or
 *   505): mandatory headers, their grammar, CSeq method, Request-URI.
 * parseMessage does both. None of them throws on any input.
 *
 * The head is scanned once, by offsets into the decoded string, with a table
 * of known names; a head that is anything but plain (folding, bare CR or LF,
 * odd start-line spacing, a damaged line) is handed to the general line
 * parser of parser-general.ts, which gives the same result for plain heads.
 */
import { fail, ok, type Result } from '../util/errors.ts';
import { isListHeader, nameEntryAt } from './compact.ts';
import { parseUnsigned, TOKEN_TABLE } from './header-values.ts';
import type { Header, SipMessage } from './message.ts';
import { parseHeadGeneral, pushHeader, type StartLine } from './parser-general.ts';
import { validateMessage } from './validate.ts';

export type { StartLine } from './parser-general.ts';
export { isValidRequest, validateMessage } from './validate.ts';

export interface ParseOptions {
  /**
   * Stream transports (TCP, TLS) frame by Content-Length, so it is mandatory
   * there (RFC 3261 section 18.3). Datagrams may omit it: the body is the rest.
   */
  stream?: boolean;
}

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

/** The head as text: UTF-8 (RFC 3261 section 7.3.1 allows it in values), which is also right for pure ASCII. */
export function decodeHead(b: Buffer, start: number, end: number): string {
  return b.toString('utf8', start, end);
}

const isWs = (c: number): boolean => c === 0x20 || c === 0x09;

/** Methods spelled by the same string object every time, so comparisons further up are cheap. */
const METHODS = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'REGISTER', 'OPTIONS', 'INFO', 'UPDATE', 'MESSAGE', 'NOTIFY'];

/**
 * The start line at head[0, end) when it is spelled plainly: single spaces,
 * `SIP/2.0`, a three-digit status. undefined sends the head to the general parser.
 */
function plainStartLine(head: string, end: number): StartLine | undefined {
  const sp1 = head.indexOf(' ');
  if (sp1 <= 0 || sp1 >= end) return undefined;
  if (head.startsWith('SIP/2.0 ', 0)) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 section 7.2).
    const d0 = head.charCodeAt(8) - 0x30;
    const d1 = head.charCodeAt(9) - 0x30;
    const d2 = head.charCodeAt(10) - 0x30;
    if (end < 11 || !(d0 >= 1 && d0 <= 6 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9)) return undefined;
    if (end > 11 && head.charCodeAt(11) !== 0x20) return undefined;
    const reason = end > 11 ? head.slice(12, end) : '';
    return { kind: 'response', version: 'SIP/2.0', status: d0 * 100 + d1 * 10 + d2, reason };
  }
  // Request-Line = Method SP Request-URI SP SIP-Version (RFC 3261 section 7.1).
  const sp2 = end - 8;
  if (sp2 <= sp1 + 1 || !head.startsWith(' SIP/2.0', sp2) || isWs(head.charCodeAt(sp1 + 1))) return undefined;
  if (isWs(head.charCodeAt(sp2 - 1)) || head.lastIndexOf(' ', end - 1) !== sp2) return undefined;
  for (let i = 0; i < sp1; i++) {
    const c = head.charCodeAt(i);
    if (c >= 128 || TOKEN_TABLE[c] === 0) return undefined;
  }
  let method: string | undefined;
  for (let k = 0; k < METHODS.length; k++) {
    const m = METHODS[k];
    if (m.length === sp1 && head.startsWith(m, 0)) {
      method = m;
      break;
    }
  }
  return { kind: 'request', method: method ?? head.slice(0, sp1), uri: head.slice(sp1 + 1, sp2), version: 'SIP/2.0' };
}

/**
 * The plain case of parseHead: CRLF line ends only, no folding, every line a
 * token name, a colon and a value. undefined hands the head to parseHeadGeneral.
 */
export function parseHeadPlain(head: string): { start: StartLine; headers: Header[] } | undefined {
  const len = head.length;
  let lineEnd = head.indexOf('\r');
  if (lineEnd < 0 || head.charCodeAt(lineEnd + 1) !== 0x0a || head.indexOf('\n') !== lineEnd + 1) return undefined;
  const start = plainStartLine(head, lineEnd);
  if (start === undefined) return undefined;
  const headers: Header[] = [];
  let pos = lineEnd + 2;
  while (pos < len) {
    // The line ends at the next CR, which must start a CRLF with no LF before it.
    lineEnd = head.indexOf('\r', pos);
    const lf = head.indexOf('\n', pos);
    if (lineEnd < 0) {
      if (lf >= 0) return undefined;
      lineEnd = len;
    } else if (lf !== lineEnd + 1 || isWs(head.charCodeAt(lineEnd + 2))) return undefined; // stray LF, or folding
    // header-name HCOLON value: whitespace may surround the colon (RFC 3261 section 25.1).
    const colon = head.indexOf(':', pos);
    if (colon < 0 || colon >= lineEnd) return undefined;
    let nameEnd = colon;
    while (nameEnd > pos && isWs(head.charCodeAt(nameEnd - 1))) nameEnd--;
    if (nameEnd === pos) return undefined;
    // A known name is made of token characters; any other must be checked.
    const entry = nameEntryAt(head, pos, nameEnd);
    if (entry === undefined) {
      for (let k = pos; k < nameEnd; k++) {
        const c = head.charCodeAt(k);
        if (c >= 128 || TOKEN_TABLE[c] === 0) return undefined;
      }
    }
    const name = entry === undefined ? head.slice(pos, nameEnd) : entry.canonical;
    let i = colon + 1;
    while (i < lineEnd && isWs(head.charCodeAt(i))) i++;
    let e = lineEnd;
    while (e > i && isWs(head.charCodeAt(e - 1))) e--;
    const value = head.slice(i, e);
    const list = entry === undefined ? isListHeader(name) : entry.list;
    if (list && value.indexOf(',') >= 0) pushList(name, value, headers);
    else headers.push({ name, value });
    pos = lineEnd + 2;
  }
  return { start, headers };
}

/**
 * One entry per element of a list header (RFC 3261 section 7.3.1), as
 * pushHeader does, with a direct comma scan when no quoted string or angle
 * bracket can hide a comma.
 */
function pushList(name: string, value: string, out: Header[]): void {
  if (value.indexOf('"') >= 0 || value.indexOf('<') >= 0) {
    pushHeader(name, value, true, out);
    return;
  }
  const n = value.length;
  const before = out.length;
  let a = 0;
  while (a <= n) {
    let comma = value.indexOf(',', a);
    if (comma < 0) comma = n;
    let e = comma;
    while (a < e && isWs(value.charCodeAt(a))) a++;
    while (e > a && isWs(value.charCodeAt(e - 1))) e--;
    if (e > a) out.push({ name, value: value.slice(a, e) });
    a = comma + 1;
  }
  if (out.length === before) out.push({ name, value: '' });
}

/**
 * Parses the header block text (start line + header lines, without the final
 * empty line): folding, compact names, list splitting (RFC 3261 section 7.3).
 */
export function parseHead(head: string): Result<{ start: StartLine; headers: Header[] }> {
  const plain = parseHeadPlain(head);
  return plain === undefined ? parseHeadGeneral(head) : ok(plain);
}

/** Content-Length of a header list: undefined when absent, an error string when malformed or inconsistent. */
export function contentLengthOf(headers: Header[]): number | undefined | string {
  let len: number | undefined;
  for (let k = 0; k < headers.length; k++) {
    const h = headers[k];
    if (h.name !== 'Content-Length') continue;
    const n = digitsValue(h.value) ?? parseUnsigned(h.value, Number.MAX_SAFE_INTEGER);
    if (n === undefined) return 'bad Content-Length';
    if (len !== undefined && len !== n) return 'conflicting Content-Length';
    len = n;
  }
  return len;
}

/** A short all-digit value, or undefined (the caller applies the full rule). */
function digitsValue(s: string): number | undefined {
  const n = s.length;
  if (n === 0 || n > 9) return undefined;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return undefined;
    v = v * 10 + d;
  }
  return v;
}

/**
 * Parses one message from a datagram or an exact stream frame without the
 * semantic checks of validateMessage.
 */
export function parseMessageRaw(input: Uint8Array, opts: ParseOptions = {}): Result<SipMessage> {
  const b = asBuffer(input);
  const from = skipLeadingCrlf(b);
  if (from >= b.length) return fail('empty message');
  // findHeaderEnd, without the object.
  let headEnd = b.indexOf(CRLFCRLF, from);
  let bodyStart = headEnd + 4;
  if (headEnd < 0) {
    headEnd = b.indexOf(LFLF, from);
    if (headEnd < 0) return fail('missing end of headers');
    bodyStart = headEnd + 2;
  }
  const text = decodeHead(b, from, headEnd);
  let start: StartLine;
  let headers: Header[];
  const plain = parseHeadPlain(text);
  if (plain !== undefined) ({ start, headers } = plain);
  else {
    const head = parseHeadGeneral(text);
    if (!head.ok) return head;
    ({ start, headers } = head.value);
  }
  const cl = contentLengthOf(headers);
  if (typeof cl === 'string') return fail(cl);
  const available = b.length - bodyStart;
  let bodyLen: number;
  if (cl === undefined) {
    if (opts.stream) return fail('missing Content-Length');
    bodyLen = available;
  } else {
    // RFC 3261 section 18.3: a shorter body is an error; extra bytes are discarded.
    if (cl > available) return fail('Content-Length larger than body');
    bodyLen = cl;
  }
  return ok(messageFrom(start, headers, copyBody(b, bodyStart, bodyLen)));
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
