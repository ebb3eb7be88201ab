/**
 * SIP message serializer (RFC 3261 section 7). Headers are written in their
 * stored order, one line per entry; Content-Length is always written and
 * always counts the body's bytes (a stale value in the model is corrected in place).
 */
import type { SipMessage } from './message.ts';

/** Start line without the CRLF. */
export function startLine(msg: SipMessage): string {
  return msg.kind === 'request'
    ? `${msg.method} ${msg.uri} ${msg.version}`
    : `${msg.version} ${msg.status} ${msg.reason}`;
}

/** The header block including the final empty line, with Content-Length set from the body. */
export function serializeHead(msg: SipMessage): string {
  let s = startLine(msg) + '\r\n';
  let wroteLength = false;
  for (const h of msg.headers) {
    if (h.name.length === 14 && h.name.toLowerCase() === 'content-length') {
      if (wroteLength) continue;
      wroteLength = true;
      s += `Content-Length: ${msg.body.length}\r\n`;
      continue;
    }
    s += `${h.name}: ${h.value}\r\n`;
  }
  if (!wroteLength) s += `Content-Length: ${msg.body.length}\r\n`;
  return s + '\r\n';
}

/**
 * Writes the ASCII string s at out[at], returning the index after it, or -1 at the first character that is not
 * ASCII (the caller then encodes the whole message as UTF-8 instead). Assumes out has room for s.length bytes.
 */
function writeAscii(out: Buffer, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return -1;
    out[at + i] = c;
  }
  return at + s.length;
}

const CRLF = 0x0a0d;

/**
 * The head written byte by byte into one buffer, when every name and value is ASCII (nearly always): no
 * intermediate string of the whole head is built, decoded and copied. undefined otherwise.
 */
function serializeAscii(msg: SipMessage): Buffer | undefined {
  const hs = msg.headers;
  const bodyLength = msg.body.length;
  const lengthText = String(bodyLength);
  const start = startLine(msg);
  // Each line is name, ": ", value, CRLF; the Content-Length line is written once, from the body.
  let size = start.length + 2 + 16 + lengthText.length + 2 + 2 + bodyLength;
  for (let i = 0; i < hs.length; i++) size += hs[i].name.length + hs[i].value.length + 4;
  const out = Buffer.allocUnsafe(size);
  let at = writeAscii(out, 0, start);
  if (at < 0) return undefined;
  out.writeUInt16LE(CRLF, at);
  at += 2;
  let wroteLength = false;
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i];
    if (h.name.length === 14 && h.name.toLowerCase() === 'content-length') {
      if (wroteLength) continue;
      wroteLength = true;
      at = writeAscii(out, at, `Content-Length: ${lengthText}\r\n`);
      continue;
    }
    at = writeAscii(out, at, h.name);
    if (at < 0) return undefined;
    out[at++] = 0x3a;
    out[at++] = 0x20;
    at = writeAscii(out, at, h.value);
    if (at < 0) return undefined;
    out.writeUInt16LE(CRLF, at);
    at += 2;
  }
  if (!wroteLength) at = writeAscii(out, at, `Content-Length: ${lengthText}\r\n`);
  out.writeUInt16LE(CRLF, at);
  at += 2;
  out.set(msg.body, at);
  at += bodyLength;
  return at === out.length ? out : out.subarray(0, at);
}

export function serialize(msg: SipMessage): Buffer {
  const ascii = serializeAscii(msg);
  if (ascii !== undefined) return ascii;
  const head = serializeHead(msg);
  const headLen = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headLen + msg.body.length);
  out.write(head, 0, headLen, 'utf8');
  out.set(msg.body, headLen);
  return out;
}
