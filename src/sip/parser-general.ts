/**
 * The general line parser of a SIP header block (RFC 3261 section 7 and 25):
 * folding, bare-LF heads, liberal Request-Line spacing, and the precise error
 * for each kind of damage. parseHead in parser.ts runs a faster scan first and
 * falls back to this one whenever a head is anything but plain, so both give
 * the same answer for every input.
 */
import { fail, ok, type Result } from '../util/errors.ts';
import { canonicalName, isListHeader } from './compact.ts';
import { splitTopLevel, TOKEN_RE, TOKEN_TABLE, trimLws } from './header-values.ts';
import type { Header } from './message.ts';

export type StartLine =
  | { kind: 'request'; method: string; uri: string; version: string }
  | { kind: 'response'; version: string; status: number; reason: string };

const CONTROL_RE = /[\r\n]/;

/**
 * Request-Line = Method SP Request-URI SP SIP-Version;
 * Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 section 7.1, 7.2).
 * The Request-URI is taken as everything between the first and the last SP;
 * validateMessage refuses it if it is not a URI.
 */
export function parseStartLine(line: string): Result<StartLine> {
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

/** Pushes one header value onto `out`, splitting list headers at top-level commas. */
export function pushHeader(name: string, value: string, list: boolean, out: Header[]): void {
  if (list && value.indexOf(',') >= 0) {
    const parts = splitTopLevel(value, ',');
    if (parts.length === 0) out.push({ name, value: '' });
    for (const p of parts) out.push({ name, value: p });
  } else out.push({ name, value });
}

/**
 * Parses the header block text (start line + header lines, without the final
 * empty line), whatever its line endings and folding.
 */
export function parseHeadGeneral(head: string): Result<{ start: StartLine; headers: Header[] }> {
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
    while (i < lineEnd) {
      const c = head.charCodeAt(i);
      if (c >= 128 || TOKEN_TABLE[c] === 0) break;
      i++;
    }
    if (i === pos) {
      const c = head.charCodeAt(pos);
      return fail(c === 0x20 || c === 0x09 ? 'malformed header folding' : 'malformed header name');
    }
    const name = canonicalName(head.slice(pos, i));
    while (i < lineEnd && (head.charCodeAt(i) === 0x20 || head.charCodeAt(i) === 0x09)) i++;
    if (head.charCodeAt(i) !== 0x3a) return fail(i === lineEnd ? 'malformed header line' : 'malformed header name');
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
    pushHeader(name, value, isListHeader(name), headers);
  }
  return ok({ start: start.value, headers });
}
