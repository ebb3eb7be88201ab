/**
 * Refreshing a binding in place (RFC 3261 10.3 step 7: an existing binding "MUST be ... updated"): when a
 * REGISTER names a contact exactly as the binding holds it, the registrar keeps the binding's objects and only
 * moves its Call-ID, CSeq, expiry and flow. A phone re-registers the same contact every time, so the location
 * service then allocates almost nothing per refresh, and nothing of the request (whose header values are views
 * into its whole header block) outlives it.
 */
import type { NameAddr, SipUri } from './message.ts';
import type { Peer } from './transport.ts';

type Params = Array<[string, string | null]>;

function sameParams(a: Params, b: Params, skip?: string): boolean {
  let j = 0;
  for (let i = 0; i < b.length; i++) {
    if (skip !== undefined && b[i][0] === skip) continue;
    const x = a[j++];
    if (x === undefined || x[0] !== b[i][0] || x[1] !== b[i][1]) return false;
  }
  return j === a.length;
}

function sameUri(a: SipUri, b: SipUri): boolean {
  if (a.scheme !== b.scheme || a.user !== b.user || a.password !== b.password || a.host !== b.host) return false;
  if (a.port !== b.port || a.opaque !== b.opaque || a.headers.length !== b.headers.length) return false;
  for (let i = 0; i < a.headers.length; i++)
    if (a.headers[i][0] !== b.headers[i][0] || a.headers[i][1] !== b.headers[i][1]) return false;
  return sameParams(a.params, b.params);
}

/**
 * Whether `held` (a binding's contact, kept without `expires`) is `given` (a Contact of a REGISTER) written the
 * same way, ignoring the latter's `expires` parameter: then the binding's formatted contact stays as it is.
 */
export function sameContact(held: NameAddr, given: NameAddr): boolean {
  return (
    held.displayName === given.displayName &&
    sameUri(held.uri, given.uri) &&
    sameParams(held.params, given.params, 'expires')
  );
}

/** The flow a binding keeps: the one it has when the REGISTER came the same way (no new object per refresh). */
export function refreshedFlow(held: Peer | undefined, flow: Peer | undefined): Peer | undefined {
  if (held === undefined || flow === undefined) return flow;
  const same =
    held.transport === flow.transport &&
    held.address === flow.address &&
    held.port === flow.port &&
    held.connId === flow.connId &&
    held.connectionOnly === flow.connectionOnly;
  return same ? held : flow;
}

/**
 * A copy of a short header value that does not keep the request's header block alive: values from the parser are
 * views into that block (as V8 slices strings), and a binding keeps its Call-ID for its lifetime. Concatenating
 * makes a two-part string; slicing it flattens that into a fresh copy and views only the copy.
 */
export function ownString(s: string): string {
  return ` ${s}`.slice(1);
}
