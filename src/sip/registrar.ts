import type { Clock } from '../util/clock.ts';
import { formatNameAddr, getCSeq, getTo, parseContacts, parseNameAddr, parseUnsigned } from './header-values.ts';
import { getHeader, type Header, type NameAddr, type SipRequest, type SipUri } from './message.ts';
import { unsupportedRequire } from './front-door.ts';
import type { Peer } from './transport.ts';
import { ownString, refreshedFlow, sameContact } from './registrar-refresh.ts';
import { parseStoredFlow, storedFlow } from './stored-flow.ts';
import { parseUri, sipUriEquals } from './uri.ts';

/**
 * Location service of a registrar, RFC 3261 section 10.3: bindings from an
 * address-of-record to contact addresses, each with its own expiry, Call-ID
 * and CSeq. A core: time comes from the injected clock, nothing is sent here;
 * `register` returns the status and headers of the answer to a REGISTER.
 */

export interface RegistrarInit {
  /** Shortest accepted registration (s); shorter non-zero requests get 423 with Min-Expires (10.3 step 7). */
  minExpires: number;
  /** Longest granted registration (s); longer requests are shortened. */
  maxExpires: number;
  /** Used when neither the Contact `expires` parameter nor an Expires header is present (10.2.1.1). */
  defaultExpires: number;
  maxBindingsPerAor: number;
  maxAors: number;
}

export const DEFAULT_REGISTRAR: Readonly<RegistrarInit> = Object.freeze({
  minExpires: 60,
  maxExpires: 3600,
  defaultExpires: 3600,
  maxBindingsPerAor: 16,
  maxAors: 200_000,
});

export interface Binding {
  contact: NameAddr;
  /** The flow the REGISTER came on (RFC 5626 3.3, sip/flow.ts): how the phone is reached. Kept across restarts
   * when it is UDP (stored-flow.ts); a connection is not. */
  flow?: Peer;
  callId: string;
  cseq: number;
  /** Clock time (ms) at which the binding lapses. */
  expiresAt: number;
}

export interface RegisterOutcome {
  status: number;
  reason: string;
  /** Headers to add to the response (Contact list, Min-Expires, Unsupported). */
  headers: Header[];
}

/**
 * A binding as it is kept across restarts: the contact as header text (without
 * `expires`) and a wall-clock expiry, since the registrar's clock is monotonic
 * within one process only.
 */
export interface StoredBinding {
  aor: string;
  /** `bindingKey` of the contact: which binding of the AOR this is. */
  key: string;
  contact: string;
  callId: string;
  cseq: number;
  /** Wall-clock ms since the epoch at which the binding lapses. */
  expiresAtWall: number;
  /** The binding's flow when it survives a restart (stored-flow.ts `storedFlow`); absent otherwise. */
  flow?: string;
}

/**
 * Where a registrar mirrors its location service so bindings survive a
 * restart (registrar-sqlite.ts). Told of every change as it is made; `load`
 * gives back what `Registrar.restore` takes.
 */
export interface BindingStore {
  put(b: StoredBinding): void;
  remove(aor: string, key: string): void;
  removeAor(aor: string): void;
}

/** What `Registrar.restore` did with stored bindings. */
export interface RestoreReport {
  restored: number;
  expired: number;
  /** Rows that could not be used, with why (they are removed from the store). */
  skipped: Array<{ aor: string; reason: string }>;
}

/** A current binding as a caller sees it: the contact and its remaining lifetime in seconds. */
export interface LiveBinding {
  contact: NameAddr;
  expiresIn: number;
  /** The flow of the REGISTER that made or last refreshed the binding, when the registrar was told it. */
  flow?: Peer;
}

/** Formatted contacts of bindings: a binding's contact is formatted once, not for every 200 and 302 that lists it. */
const formatted = new WeakMap<NameAddr, string>();

/**
 * A Contact header value for a current binding, with the `expires` parameter chosen by the registrar
 * (RFC 3261 10.3 step 8, and the Contacts of a 3xx, 8.3). Binding contacts are treated as immutable.
 */
export function bindingContact(b: LiveBinding): string {
  let text = formatted.get(b.contact);
  if (text === undefined) {
    text = formatNameAddr(b.contact);
    formatted.set(b.contact, text);
  }
  return `${text};expires=${b.expiresIn}`;
}

const fault = (status: number, reason: string, headers: Header[] = []): RegisterOutcome => ({
  status,
  reason,
  headers,
});

/** Canonical address-of-record (10.3 step 5): scheme, user and host only; parameters and port dropped. */
export function canonicalAor(uri: SipUri): string | undefined {
  if (uri.scheme !== 'sip' && uri.scheme !== 'sips') return undefined;
  if (uri.opaque !== undefined || uri.host === '') return undefined;
  return uri.user === undefined ? `${uri.scheme}:${uri.host}` : `${uri.scheme}:${uri.user}@${uri.host.toLowerCase()}`;
}

/** Parameters written first in a contact key, in this order (the order keys of stored bindings have always had). */
const KEY_PARAMS = ['transport', 'user', 'ttl', 'method', 'maddr'];

/**
 * Identity of a binding's contact URI: equal keys mean equivalent URIs (RFC 3261 19.1.4). Every parameter is in
 * the key, so two contacts differing in one (`;line=x` and `;line=y`) are two bindings; whether a contact that
 * lacks a parameter another has is the same binding is decided by `sipUriEquals` (see `Registrar.register`).
 */
export function contactKey(uri: SipUri): string {
  let k = `${uri.scheme}:${uri.user ?? ''}@${uri.host.toLowerCase()}:${uri.port ?? ''}`;
  // Most contacts carry no URI parameters or headers: nothing more to add.
  if (uri.params.length === 0 && uri.headers.length === 0) return k;
  for (const p of KEY_PARAMS) {
    const v = uri.params.find(([n]) => n === p);
    if (v) k += `;${p}=${(v[1] ?? '').toLowerCase()}`;
  }
  const others = uri.params.filter(([n]) => !KEY_PARAMS.includes(n));
  if (others.length > 0) {
    const sorted = others.map(([n, v]) => `;${n}${v === null ? '' : `=${v.toLowerCase()}`}`).sort();
    k += sorted.join('');
  }
  if (uri.headers.length > 0) k += `?${uri.headers.map(([n, v]) => `${n.toLowerCase()}=${v}`).join('&')}`;
  return k;
}

/** Keys of outbound bindings (RFC 5626 6) start with this; contact keys start with a URI scheme. */
const OUTBOUND_KEY = 'ob|';

/**
 * Which binding of an AOR a Contact is: with `+sip.instance` and `reg-id` (RFC 5626 section 6), the pair names one
 * flow of one UA instance, whatever its URI says, so the flows of an instance coexist and a new REGISTER of the same
 * pair replaces that flow; a `reg-id` without an instance is ignored (section 6). Else the contact URI (`contactKey`).
 */
export function bindingKey(c: NameAddr): string {
  const instance = c.params.find(([n]) => n.toLowerCase() === '+sip.instance')?.[1];
  const regId = c.params.find(([n]) => n.toLowerCase() === 'reg-id')?.[1];
  if (instance && regId && /^[1-9]\d{0,9}$/.test(regId)) return `${OUTBOUND_KEY}${instance}|${regId}`;
  return contactKey(c.uri);
}

/** The key of the binding in `bindings` the contact is (RFC 3261 10.3 step 7, 19.1.4; RFC 5626 6 by instance). */
function matchingKey(bindings: Map<string, Binding> | undefined, uri: SipUri, key: string): string | undefined {
  if (!bindings) return undefined;
  if (bindings.has(key) || key.startsWith(OUTBOUND_KEY)) return bindings.has(key) ? key : undefined;
  for (const [k, b] of bindings) if (!k.startsWith(OUTBOUND_KEY) && sipUriEquals(b.contact.uri, uri)) return k;
  return undefined;
}

export class Registrar {
  private readonly clock: Clock;
  readonly config: Readonly<RegistrarInit>;
  /** AOR -> (binding key -> binding). */
  private readonly table = new Map<string, Map<string, Binding>>();
  private readonly store?: BindingStore;

  constructor(components: { clock: Clock; store?: BindingStore }, init: Partial<RegistrarInit> = {}) {
    this.clock = components.clock;
    this.store = components.store;
    const c = { ...DEFAULT_REGISTRAR, ...init };
    if (!(c.minExpires >= 0 && c.maxExpires >= c.minExpires && c.defaultExpires > 0))
      throw new RangeError('registrar: need 0 <= minExpires <= maxExpires and defaultExpires > 0');
    this.config = Object.freeze(c);
  }

  /** Number of addresses-of-record with at least one binding (expired ones may linger until `sweep`). */
  get size(): number {
    return this.table.size;
  }

  /**
   * Handle a REGISTER, RFC 3261 10.3. Never throws: malformed input gets a 4xx outcome. `flow` is where the REGISTER
   * came from (sip/flow.ts flowOf): kept with every binding it adds or refreshes.
   */
  register(req: SipRequest, flow?: Peer): RegisterOutcome {
    const now = this.clock.now();
    // 10.3 step 2: "the registrar ... MUST process the Require header field values as described for UASs
    // in Section 8.2.2" -- we support no extensions, so anything required gets 420 (8.2.2.3). Behind a front door
    // this never triggers (the door checked first); the core keeps the step for callers that use it directly.
    const unknown = unsupportedRequire(req);
    if (unknown.length > 0) return fault(420, 'Bad Extension', [{ name: 'Unsupported', value: unknown.join(', ') }]);

    // 10.3 step 5: "The registrar extracts the address-of-record from the To header field of the request."
    const to = getTo(req);
    if (!to.ok) return fault(400, `Bad Request: ${to.error}`);
    const aor = canonicalAor(to.value.uri);
    if (aor === undefined) return fault(404, 'Not Found: unsupported address-of-record');
    const callId = getHeader(req, 'Call-ID')?.trim();
    if (!callId) return fault(400, 'Bad Request: missing Call-ID');
    const cseq = getCSeq(req);
    if (!cseq.ok) return fault(400, `Bad Request: ${cseq.error}`);

    const contacts = parseContacts(req);
    if (!contacts.ok) return fault(400, `Bad Request: ${contacts.error}`);
    const rawExpires = getHeader(req, 'Expires');
    let headerExpires: number | undefined;
    if (rawExpires !== undefined) {
      headerExpires = parseUnsigned(rawExpires, 2 ** 32 - 1);
      if (headerExpires === undefined) return fault(400, 'Bad Request: malformed Expires');
    }

    const current = this.table.get(aor);
    if (current) this.dropExpired(aor, current, now);

    if (contacts.value === '*') {
      // 10.3 step 6: "If it is [*] and the request has additional Contact fields or an expiration time other than
      // zero, the request is invalid, and the server MUST return a 400 (Invalid Request) and skip the remaining steps."
      if (headerExpires !== 0) return fault(400, 'Invalid Request: Contact * requires Expires: 0');
      // "If not, the registrar checks whether the Call-ID agrees with the value stored for each binding. If not, it
      // MUST remove the binding. If it does agree, it MUST remove the binding only if the CSeq in the request is
      // higher than the value stored for that binding. Otherwise, the update MUST be aborted and the request fails."
      if (current) {
        for (const b of current.values())
          if (b.callId === callId && cseq.value.seq <= b.cseq) return fault(400, 'Bad Request: out-of-order CSeq');
        this.table.delete(aor);
        this.store?.removeAor(aor);
      }
      return fault(200, 'OK');
    }

    // 10.3 step 7: each contact, in order; all changes committed only if every one is acceptable.
    // `old` is the key of the current binding whose contact is equivalent (19.1.4), if any.
    const changes: Array<{ key: string; old?: string; contact: NameAddr; expires: number }> = [];
    for (const c of contacts.value) {
      let expires = headerExpires ?? this.config.defaultExpires;
      const param = c.params.find(([n]) => n === 'expires');
      if (param) {
        const v = param[1] === null ? undefined : parseUnsigned(param[1], 2 ** 32 - 1);
        if (v === undefined) return fault(400, 'Bad Request: malformed Contact expires parameter');
        expires = v;
      }
      // "If the [expiration interval] is less than [the minimum the registrar accepts] ... the registrar MAY reject
      // the registration with a response of 423 (Interval Too Brief). ... [it] MUST contain a Min-Expires header."
      if (expires > 0 && expires < this.config.minExpires)
        return fault(423, 'Interval Too Brief', [{ name: 'Min-Expires', value: String(this.config.minExpires) }]);
      // "the registrar MAY shorten the expiration interval" (10.3 step 7, 10.2.1.1).
      const key = bindingKey(c);
      const old = matchingKey(current, c.uri, key);
      changes.push({ key, old, contact: c, expires: Math.min(expires, this.config.maxExpires) });
    }

    for (const ch of changes) {
      const b = ch.old === undefined ? undefined : current?.get(ch.old);
      // "If they are the same [Call-ID], the registrar compares the CSeq value. If the value is higher than that of
      // the existing binding, it MUST update or remove the binding as above. If not, the update MUST be aborted and
      // the request fails."
      if (b && b.callId === callId && cseq.value.seq <= b.cseq) return fault(400, 'Bad Request: out-of-order CSeq');
    }

    let bindings = current;
    let adds = 0;
    for (let i = 0; i < changes.length; i++) {
      const c = changes[i];
      // Each new key once: two contacts of one request naming the same new binding add one.
      if (
        c.expires > 0 &&
        c.old === undefined &&
        !changes.some((d, j) => j < i && d.key === c.key && d.expires > 0 && d.old === undefined)
      )
        adds++;
    }
    if ((current?.size ?? 0) + adds > this.config.maxBindingsPerAor)
      return fault(403, 'Forbidden: too many bindings for this address-of-record');
    if (!bindings && changes.some((c) => c.expires > 0)) {
      if (this.table.size >= this.config.maxAors) this.sweep();
      if (this.table.size >= this.config.maxAors) return fault(503, 'Service Unavailable: registrar full');
      bindings = new Map();
      this.table.set(aor, bindings);
    }
    for (const ch of changes) {
      // "If the binding does not exist, it is tentatively added. If the binding does exist, ... the binding MUST
      // be removed if the expiration time is zero and updated otherwise."
      if (ch.old !== undefined && (ch.expires === 0 || ch.old !== ch.key)) {
        // Removed, or updated to an equivalent contact written differently: the binding is re-keyed.
        if (bindings?.delete(ch.old)) this.store?.remove(aor, ch.old);
      }
      if (ch.expires !== 0) {
        const expiresAt = now + ch.expires * 1000;
        const held = ch.old === ch.key ? bindings?.get(ch.key) : undefined;
        let b: Binding;
        if (held !== undefined && sameContact(held.contact, ch.contact)) {
          // The same contact refreshed: updated in place (registrar-refresh.ts).
          b = held;
          if (b.callId !== callId) b.callId = ownString(callId);
          b.cseq = cseq.value.seq;
          b.expiresAt = expiresAt;
          b.flow = refreshedFlow(b.flow, flow);
        } else {
          const contact: NameAddr = { ...ch.contact, params: ch.contact.params.filter(([n]) => n !== 'expires') };
          b = { contact, callId: ownString(callId), cseq: cseq.value.seq, expiresAt, flow };
          bindings?.set(ch.key, b);
        }
        this.store?.put(this.stored(aor, ch.key, b, now));
      }
    }
    if (bindings && bindings.size === 0) this.table.delete(aor);

    // 10.3 step 8: "The registrar returns a 200 (OK) response. The response MUST contain Contact header field
    // values enumerating all current bindings. Each Contact value MUST feature an 'expires' parameter indicating
    // its expiration interval chosen by the registrar."
    const headers: Header[] = this.lookupCanonical(aor).map((b) => ({ name: 'Contact', value: bindingContact(b) }));
    // RFC 5626 6: a registrar that kept a binding by instance and reg-id says so with Require: outbound.
    if (changes.some((c) => c.key.startsWith(OUTBOUND_KEY))) headers.push({ name: 'Require', value: 'outbound' });
    return { status: 200, reason: 'OK', headers };
  }

  /** Current bindings of an address-of-record (any URI form; it is canonicalised), highest q first. */
  lookup(uri: SipUri): LiveBinding[] {
    const aor = canonicalAor(uri);
    return aor === undefined ? [] : this.lookupCanonical(aor);
  }

  /** Every current binding of every address-of-record (for keep-alives over their flows). */
  allBindings(): LiveBinding[] {
    const out: LiveBinding[] = [];
    for (const aor of this.addressesOfRecord()) out.push(...this.lookupCanonical(aor));
    return out;
  }

  /** Addresses-of-record with at least one current binding (canonical form, `sip:user@host`). */
  addressesOfRecord(): string[] {
    const now = this.clock.now();
    for (const [aor, m] of this.table) this.dropExpired(aor, m, now);
    return [...this.table.keys()];
  }

  /** Drop every binding of an address-of-record (canonical form), as a `Contact: *` removal would. */
  removeAor(aor: string): void {
    this.table.delete(aor);
    this.store?.removeAor(aor);
  }

  /**
   * Put bindings kept by a store back after a restart, each with the lifetime
   * it had left (never more than `maxExpires`). Lapsed and unusable rows are
   * dropped from the store; nothing here throws on bad rows. A binding gets back
   * the flow it was stored with (a UDP flow, stored-flow.ts), so calls and
   * keep-alives go over it before the phone registers again.
   */
  restore(rows: Iterable<StoredBinding>): RestoreReport {
    const report: RestoreReport = { restored: 0, expired: 0, skipped: [] };
    const now = this.clock.now();
    const wall = this.clock.wallNow();
    for (const row of rows) {
      const skip = (reason: string) => {
        report.skipped.push({ aor: String(row.aor), reason });
        this.store?.remove(row.aor, row.key);
      };
      const u = typeof row.aor === 'string' ? parseUri(row.aor) : undefined;
      const aor = u?.ok ? canonicalAor(u.value) : undefined;
      if (aor === undefined || aor !== row.aor) {
        skip('not a canonical address-of-record');
        continue;
      }
      const contact = typeof row.contact === 'string' ? parseNameAddr(row.contact) : undefined;
      if (!contact?.ok || contact.value.params.some(([n]) => n === 'expires')) {
        skip('malformed contact');
        continue;
      }
      const key = bindingKey(contact.value);
      if (key !== row.key) {
        skip('contact does not match its key');
        continue;
      }
      if (typeof row.callId !== 'string' || row.callId === '' || !Number.isSafeInteger(row.cseq) || row.cseq < 0) {
        skip('malformed Call-ID or CSeq');
        continue;
      }
      if (!Number.isFinite(row.expiresAtWall)) {
        skip('malformed expiry');
        continue;
      }
      const flow = row.flow === undefined || row.flow === null ? undefined : parseStoredFlow(row.flow);
      if (flow && !flow.ok) {
        skip(`malformed flow: ${flow.error}`);
        continue;
      }
      const left = Math.min(row.expiresAtWall - wall, this.config.maxExpires * 1000);
      if (left <= 0) {
        report.expired++;
        this.store?.remove(aor, key);
        continue;
      }
      let m = this.table.get(aor);
      if (!m && this.table.size >= this.config.maxAors) {
        skip('registrar full');
        continue;
      }
      if (m && !m.has(key) && m.size >= this.config.maxBindingsPerAor) {
        skip('too many bindings for this address-of-record');
        continue;
      }
      if (!m) {
        m = new Map();
        this.table.set(aor, m);
      }
      m.set(key, {
        contact: contact.value,
        callId: row.callId,
        cseq: row.cseq,
        expiresAt: now + left,
        flow: flow?.value,
      });
      report.restored++;
    }
    return report;
  }

  /** Remove every expired binding; returns how many went. */
  sweep(): number {
    const now = this.clock.now();
    let n = 0;
    for (const [aor, m] of this.table) n += this.dropExpired(aor, m, now);
    return n;
  }

  private lookupCanonical(aor: string): LiveBinding[] {
    const m = this.table.get(aor);
    if (!m) return [];
    const now = this.clock.now();
    this.dropExpired(aor, m, now);
    const out: LiveBinding[] = [];
    for (const b of m.values())
      out.push({ contact: b.contact, expiresIn: Math.ceil((b.expiresAt - now) / 1000), flow: b.flow });
    return out.length > 1 ? out.sort(byQ) : out;
  }

  private stored(aor: string, key: string, b: Binding, now: number): StoredBinding {
    const contact = formatNameAddr(b.contact);
    return {
      aor,
      key,
      contact,
      callId: b.callId,
      cseq: b.cseq,
      expiresAtWall: this.clock.wallNow() + b.expiresAt - now,
      flow: storedFlow(b.flow),
    };
  }

  private dropExpired(aor: string, m: Map<string, Binding>, now: number): number {
    let n = 0;
    for (const [k, b] of m)
      if (b.expiresAt <= now) {
        m.delete(k);
        this.store?.remove(aor, k);
        n++;
      }
    if (m.size === 0) this.table.delete(aor);
    return n;
  }
}

/** Highest q first (RFC 3261 20.10); the sort is stable, so equal q keep their order. */
const byQ = (a: LiveBinding, b: LiveBinding): number => qOf(b.contact) - qOf(a.contact);

function qOf(n: NameAddr): number {
  const q = n.params.find(([k]) => k === 'q')?.[1];
  const v = q == null ? 1 : Number(q);
  return Number.isFinite(v) ? v : 1;
}
