/**
 * Header names: compact forms (RFC 3261 section 7.3.3 and later extensions),
 * canonical spelling of known long names, and which headers may be split at
 * commas (RFC 3261 section 7.3.1).
 */

/** Compact form (lower-case letter) -> canonical long name. */
export const COMPACT_FORMS: Readonly<Record<string, string>> = {
  // RFC 3261 section 7.3.3 / 20
  c: 'Content-Type',
  e: 'Content-Encoding',
  f: 'From',
  i: 'Call-ID',
  k: 'Supported',
  l: 'Content-Length',
  m: 'Contact',
  s: 'Subject',
  t: 'To',
  v: 'Via',
  // RFC 3265 / 6665 (events)
  o: 'Event',
  u: 'Allow-Events',
  // RFC 3515 (REFER), RFC 3892 (Referred-By)
  r: 'Refer-To',
  b: 'Referred-By',
  // RFC 4028 (session timers)
  x: 'Session-Expires',
  // RFC 4474 / 8224 (identity)
  y: 'Identity',
  // RFC 3841 (caller preferences)
  a: 'Accept-Contact',
  j: 'Reject-Contact',
  d: 'Request-Disposition',
  // RFC 4538 (Target-Dialog), RFC 4488 (Refer-Sub)
  g: 'Target-Dialog',
};

const KNOWN_NAMES = [
  'Accept',
  'Accept-Contact',
  'Accept-Encoding',
  'Accept-Language',
  'Alert-Info',
  'Allow',
  'Allow-Events',
  'Authentication-Info',
  'Authorization',
  'Call-ID',
  'Call-Info',
  'Contact',
  'Content-Disposition',
  'Content-Encoding',
  'Content-Language',
  'Content-Length',
  'Content-Type',
  'CSeq',
  'Date',
  'Error-Info',
  'Event',
  'Expires',
  'From',
  'History-Info',
  'Identity',
  'In-Reply-To',
  'Max-Forwards',
  'MIME-Version',
  'Min-Expires',
  'Min-SE',
  'Organization',
  'P-Asserted-Identity',
  'P-Associated-URI',
  'P-Preferred-Identity',
  'Path',
  'Priority',
  'Privacy',
  'Proxy-Authenticate',
  'Proxy-Authorization',
  'Proxy-Require',
  'RAck',
  'Reason',
  'Record-Route',
  'Refer-Sub',
  'Refer-To',
  'Referred-By',
  'Reject-Contact',
  'Replaces',
  'Reply-To',
  'Request-Disposition',
  'Require',
  'Retry-After',
  'Route',
  'RSeq',
  'Security-Client',
  'Security-Server',
  'Security-Verify',
  'Server',
  'Service-Route',
  'Session-Expires',
  'SIP-ETag',
  'SIP-If-Match',
  'Subject',
  'Subscription-State',
  'Supported',
  'Target-Dialog',
  'Timestamp',
  'To',
  'Unsupported',
  'User-Agent',
  'Via',
  'Warning',
  'WWW-Authenticate',
];

const CANONICAL = new Map<string, string>();
for (const n of KNOWN_NAMES) CANONICAL.set(n.toLowerCase(), n);
for (const [c, n] of Object.entries(COMPACT_FORMS)) CANONICAL.set(c, n);
/** Names already spelled canonically (the common case on the wire) hit without lower-casing. */
const EXACT = new Map<string, string>(CANONICAL);
for (const n of KNOWN_NAMES) EXACT.set(n, n);
for (const [c, n] of Object.entries(COMPACT_FORMS)) EXACT.set(c.toUpperCase(), n);

/** Hash of a header name's exact spelling (kept for callers that hash while scanning). */
export function nameHash(h: number, c: number): number {
  return (Math.imul(h, 31) + c) | 0;
}

/** A known header name as the parser's table holds it. */
interface NameEntry {
  /** Lower-case spelling matched on the wire (a compact letter for compact forms). */
  lower: string;
  /** The usual spelling, tried first: most senders write names this way. */
  usual: string;
  canonical: string;
  list: boolean;
}

/** Known names bucketed by length and first letter: a lookup is one array index and one or two compares. */
const NAME_TABLE: Array<NameEntry[] | undefined> = [];
const bucketOf = (len: number, c0: number): number => (len << 5) | (c0 & 31);

function addName(lower: string, usual: string, canonical: string): void {
  const i = bucketOf(lower.length, lower.charCodeAt(0));
  const e: NameEntry = { lower, usual, canonical, list: false };
  const b = NAME_TABLE[i];
  if (b) b.push(e);
  else NAME_TABLE[i] = [e];
}

/**
 * Canonical name of the header name at s[from, to), matched without regard to
 * case and without copying it; undefined when the name is not a known one
 * (the caller keeps it as written). A hash from nameHash may be passed; it is
 * no longer needed.
 */
export function canonicalNameAt(s: string, from: number, to: number, _hash?: number): string | undefined {
  return nameEntryAt(s, from, to)?.canonical;
}

/** As canonicalNameAt, with whether the header is a comma-separated list (see isListHeader). */
export function nameEntryAt(s: string, from: number, to: number): { canonical: string; list: boolean } | undefined {
  const len = to - from;
  if (len > 63) return undefined;
  const bucket = NAME_TABLE[bucketOf(len, s.charCodeAt(from) | 0x20)];
  if (bucket === undefined) return undefined;
  for (let k = 0; k < bucket.length; k++) {
    const e = bucket[k];
    if (s.startsWith(e.usual, from)) return e;
    let i = 0;
    while (i < len && (s.charCodeAt(from + i) | 0x20) === e.lower.charCodeAt(i)) i++;
    if (i === len) return e;
  }
  return undefined;
}

/**
 * Canonical name for a header name as written on the wire: compact forms are
 * expanded, known names get their usual spelling, unknown names are kept as written.
 */
export function canonicalName(name: string): string {
  return EXACT.get(name) ?? CANONICAL.get(name.toLowerCase()) ?? name;
}

/** Compact form of a canonical name, if it has one (for compact serialisation). */
export function compactName(name: string): string | undefined {
  const n = canonicalName(name);
  for (const [c, long] of Object.entries(COMPACT_FORMS)) if (long === n) return c;
  return undefined;
}

/**
 * Headers whose grammar is `#element` (a comma-separated list), so that
 * several values on one line are equivalent to several lines (RFC 3261
 * section 7.3.1). Everything else is kept whole: in particular the
 * authentication headers, whose values contain commas, and single-valued
 * headers such as Date, Call-ID, CSeq, User-Agent, Subject.
 */
const LIST_HEADERS = new Set(
  [
    'Accept',
    'Accept-Contact',
    'Accept-Encoding',
    'Accept-Language',
    'Alert-Info',
    'Allow',
    'Allow-Events',
    'Call-Info',
    'Contact',
    'Content-Encoding',
    'Content-Language',
    'Error-Info',
    'History-Info',
    'In-Reply-To',
    'P-Asserted-Identity',
    'P-Associated-URI',
    'P-Preferred-Identity',
    'Path',
    'Proxy-Require',
    'Reason',
    'Record-Route',
    'Reject-Contact',
    'Request-Disposition',
    'Require',
    'Route',
    'Security-Client',
    'Security-Server',
    'Security-Verify',
    'Service-Route',
    'Supported',
    'Unsupported',
    'Via',
    'Warning',
  ].map((n) => n.toLowerCase()),
);

const LIST_CANONICAL = new Set(KNOWN_NAMES.filter((n) => LIST_HEADERS.has(n.toLowerCase())));

/** True when a header's values may be split at top-level commas. */
export function isListHeader(name: string): boolean {
  return LIST_CANONICAL.has(name) || LIST_HEADERS.has(name.toLowerCase());
}

for (const n of KNOWN_NAMES) addName(n.toLowerCase(), n, n);
for (const [c, n] of Object.entries(COMPACT_FORMS)) addName(c, c, n);
for (const b of NAME_TABLE) if (b) for (const e of b) e.list = isListHeader(e.canonical);
