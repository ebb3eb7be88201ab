/**
 * Message validation (RFC 3261 section 8.1.1 and 8.2): the checks that make a
 * request answerable with 400 (or 505). validateMessage runs the allocation-free
 * scanners of validate-fast.ts first; only a message they cannot vouch for goes
 * through validateMessageFull, which is the reference and names the problem.
 */
import { fail, ok, type Result } from '../util/errors.ts';
import { canonicalName } from './compact.ts';
import { parseContactValues, parseCSeq, parseNameAddr, parseUnsigned, parseVia } from './header-values.ts';
import type { SipMessage, SipRequest } from './message.ts';
import { parseRequestUri } from './uri.ts';
import { fastValid } from './validate-fast.ts';

/**
 * Checks a parsed message against what RFC 3261 section 8.1.1 requires of
 * every request (To, From, CSeq, Call-ID, Max-Forwards, Via) and of every
 * response (the same minus Max-Forwards), with their grammar, plus Expires and
 * Contact. The error names the problem and is meant as the reason phrase of a
 * 400 (see errorStatus). Never throws.
 */
export function validateMessage(msg: SipMessage): Result<SipMessage> {
  return fastValid(msg) ? ok(msg) : validateMessageFull(msg);
}

/** true when validateMessage accepts the request. */
export function isValidRequest(req: SipRequest): boolean {
  return validateMessage(req).ok;
}

/** validateMessage by the full grammar: the reference the fast checks are held to. */
export function validateMessageFull(msg: SipMessage): Result<SipMessage> {
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
