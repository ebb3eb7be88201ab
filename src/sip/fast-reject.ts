/**
 * A 503 for a request refused under overload, written straight from the request's bytes: no parse, no message
 * objects. Refusing must cost a small fraction of serving, or at twice the capacity the refusals alone fill the
 * process (RFC 6357 section 3: "the cost of rejecting a request [...] can be a significant fraction"). Over UDP a
 * refusal is cheaper than a drop too: a dropped request comes back up to six times (Timer A or E), a refused one
 * ends with one ACK.
 *
 * The response copies Via (all, in order, the top one with `received` and `rport` filled in, RFC 3261 18.2.1 and
 * RFC 3581), From, To (with a tag added), Call-ID and CSeq (8.2.6.2), and adds Retry-After (20.33). It goes back
 * to the source of the datagram. Anything unusual (folded lines, a missing header) gives undefined: the caller then
 * takes the ordinary path.
 */

/** Prefix of the To tag of these responses: their ACKs can be recognised unparsed (OVERLOAD_ACK_MARK). */
export const OVERLOAD_TAG = 'ovl503';
/** Bytes found in the ACK for one of these responses (its To carries the tag). */
export const OVERLOAD_ACK_MARK = Buffer.from(`tag=${OVERLOAD_TAG}`);

const FIELD = /^(via|v|from|f|to|t|call-id|i|cseq)[ \t]*:/i;

export function fastReject(buf: Buffer, address: string, port: number, retryAfterS: number): Buffer | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  let out = 'SIP/2.0 503 Service Unavailable\r\n';
  let vias = 0;
  let found = 0;
  let callId = '';
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const c = line.charCodeAt(0);
    if (c === 0x20 || c === 0x09) return undefined; // folded header line: leave it to the parser
    const m = FIELD.exec(line);
    if (m === null) continue;
    const name = m[1].toLowerCase();
    if (name === 'via' || name === 'v') {
      if (vias++ === 0) {
        // 18.2.1 / RFC 3581: received and rport of the top Via say where the request came from.
        let v = line.replace(/;[ \t]*rport(?=[;,\s]|$)/i, `;rport=${port}`);
        if (!/;[ \t]*received=/i.test(v)) v = v.replace(/(;|$)/, `;received=${address}$1`);
        if (v.includes(',')) return undefined; // several Via values on one line: let the parser split them
        out += `${v}\r\n`;
      } else out += `${line}\r\n`;
      continue;
    }
    found++;
    if (name === 'to' || name === 't') {
      if (/;[ \t]*tag=/i.test(line)) out += `${line}\r\n`;
      else out += `${line};tag=${OVERLOAD_TAG}\r\n`;
      continue;
    }
    if (name === 'call-id' || name === 'i') callId = line;
    out += `${line}\r\n`;
  }
  if (vias === 0 || found < 4 || callId === '') return undefined;
  return Buffer.from(`${out}Retry-After: ${retryAfterS}\r\nContent-Length: 0\r\n\r\n`, 'latin1');
}
