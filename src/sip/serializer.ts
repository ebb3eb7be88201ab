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

export function serialize(msg: SipMessage): Buffer {
  const head = serializeHead(msg);
  const headLen = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headLen + msg.body.length);
  out.write(head, 0, headLen, 'utf8');
  out.set(msg.body, headLen);
  return out;
}
