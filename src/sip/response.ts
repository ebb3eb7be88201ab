/**
 * Building a response from a request (RFC 3261 section 8.2.6): Via (all, in
 * order), From, To, Call-ID and CSeq are copied; the To gets a tag when it had
 * none and the response is not a 100 (section 8.2.6.2).
 */
import { createHash } from 'node:crypto';
import { parseNameAddr } from './header-values.ts';
import { getHeaders, type Header, type SipRequest, type SipResponse } from './message.ts';

/** Reason phrases of RFC 3261 section 21 and common extensions. */
export const REASON_PHRASES: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  199: 'Early Dialog Terminated',
  200: 'OK',
  202: 'Accepted',
  204: 'No Notification',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  305: 'Use Proxy',
  380: 'Alternative Service',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  412: 'Conditional Request Failed',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  421: 'Extension Required',
  422: 'Session Interval Too Small',
  423: 'Interval Too Brief',
  428: 'Use Identity Header',
  429: 'Provide Referrer Identity',
  433: 'Anonymity Disallowed',
  436: 'Bad Identity-Info',
  437: 'Unsupported Certificate',
  438: 'Invalid Identity Header',
  439: 'First Hop Lacks Outbound Support',
  440: 'Max-Breadth Exceeded',
  469: 'Bad Info Package',
  470: 'Consent Needed',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  485: 'Ambiguous',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  489: 'Bad Event',
  491: 'Request Pending',
  493: 'Undecipherable',
  494: 'Security Agreement Required',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
  580: 'Precondition Failure',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
  607: 'Unwanted',
};

/** Reason phrase for a status: the table's, else the class's generic phrase. */
export function reasonPhrase(status: number): string {
  const r = REASON_PHRASES[status];
  if (r !== undefined) return r;
  const generic: Record<number, string> = { 1: 'Trying', 2: 'OK', 3: 'Multiple Choices', 4: 'Bad Request' };
  return generic[Math.floor(status / 100)] ?? (status >= 600 ? 'Busy Everywhere' : 'Server Internal Error');
}

/** Headers a response copies from its request: -1 for Via, else the group index in COPIED_NAMES. */
const COPIED_NAMES = ['From', 'To', 'Call-ID', 'CSeq', 'Timestamp'];
const COPIED: Record<string, number> = Object.assign(Object.create(null), { Via: -1 });
const COPIED_LOWER: Record<string, number> = Object.assign(Object.create(null), { via: -1 });
const COPIED_LENGTH = new Uint8Array(16);
COPIED_LENGTH[3] = 1;
COPIED_NAMES.forEach((n, i) => {
  COPIED[n] = i;
  COPIED_LOWER[n.toLowerCase()] = i;
  COPIED_LENGTH[n.length] = 1;
});

export interface ResponseOptions {
  /**
   * Tag added to To when the request's To had none (ignored for 100). When
   * omitted, a tag is derived from the request's identity (Call-ID, From tag,
   * top Via, CSeq) so retransmissions get the same tag (RFC 3261 section 8.2.6.2).
   */
  toTag?: string;
  /** Extra headers appended after the copied ones (e.g. Contact for a 3xx). */
  headers?: Header[];
  body?: Uint8Array;
}

/** Appends `;tag=` to a To value unless it already carries a tag. */
function withTag(to: string, tag: string): string {
  // Most To values of requests have no ";tag" at all (a new dialog): no need to parse them.
  if (!/;[ \t]*tag/i.test(to)) return `${to};tag=${tag}`;
  const parsed = parseNameAddr(to);
  if (parsed.ok && parsed.value.params.some(([k]) => k === 'tag')) return to;
  return `${to};tag=${tag}`;
}

/** A tag that is stable for one request and differs between requests. */
export function derivedTag(req: SipRequest): string {
  const h = createHash('sha256');
  for (const n of ['Call-ID', 'From', 'Via', 'CSeq']) h.update(getHeaders(req, n)[0] ?? '').update('\n');
  return h.digest('hex').slice(0, 16);
}

export function buildResponse(
  req: SipRequest,
  status: number,
  reason?: string,
  opts: ResponseOptions = {},
): SipResponse {
  // Via (all, in order), then From, To, Call-ID, CSeq, and for a 100 the Timestamp (RFC 3261 section 8.2.6.1),
  // each group in the request's order. The groups are found in one pass; the common case of one header each is
  // written without any group list.
  const hs = req.headers;
  const headers: Header[] = [];
  let seen = 0;
  let repeated = false;
  for (let i = 0; i < hs.length; i++) {
    const { name, value } = hs[i];
    const kind = COPIED[name] ?? (COPIED_LENGTH[name.length] === 1 ? COPIED_LOWER[name.toLowerCase()] : undefined);
    if (kind === undefined || (kind === 4 && status !== 100)) continue;
    if (kind === -1) headers.push({ name: 'Via', value });
    else {
      if ((seen & (1 << kind)) !== 0) repeated = true;
      seen |= 1 << kind;
    }
  }
  for (let k = 0; k < COPIED_NAMES.length; k++) {
    if ((seen & (1 << k)) === 0) continue;
    for (let i = 0; i < hs.length; i++) {
      const { name, value } = hs[i];
      if (
        name === COPIED_NAMES[k] ||
        (name.length === COPIED_NAMES[k].length && COPIED_LOWER[name.toLowerCase()] === k)
      ) {
        headers.push({ name: COPIED_NAMES[k], value });
        if (!repeated) break;
      }
    }
  }
  if (status > 100) {
    let tag: string | undefined;
    for (let i = 0; i < headers.length; i++)
      if (headers[i].name === 'To')
        headers[i].value = withTag(headers[i].value, (tag ??= opts.toTag ?? derivedTag(req)));
  }
  if (opts.headers) headers.push(...opts.headers);
  return {
    kind: 'response',
    version: 'SIP/2.0',
    status,
    reason: reason ?? reasonPhrase(status),
    headers,
    body: opts.body ?? new Uint8Array(0),
  };
}
