/**
 * Presence at an adapter's SIP half: the phones' subscriptions (RFC 6665,
 * event package `presence`, RFC 3856) with PIDF bodies (RFC 3863), and
 * PUBLISH (RFC 3903) from a phone setting its user's status and note.
 *
 * A phone's SUBSCRIBE to `sip:alice@<adapter>` is accepted once the overlay
 * half (presence.ts) has watched alice: 404 when there is no such user, 403
 * when she cannot be verified; an unreachable adapter of hers still gives a
 * subscription, showing her closed. Each accepted subscription is a dialog
 * this adapter keeps (its tags and Call-ID), refreshed or ended by the phone's
 * SUBSCRIBE inside it, ended by expiry with a final NOTIFY (RFC 6665 4.2.2).
 * Every state the overlay half verified goes to the subscribed phones as a
 * NOTIFY whose PIDF holds only what alice's adapter signed (status, note).
 */
import type { IncomingRequest, SipElement } from '../sip/element.ts';
import { newToken } from '../sip/element.ts';
import { getExpires, getFrom, getTag, getTo, parseContacts } from '../sip/header-values.ts';
import { getHeader, type SipRequest, type SipUri } from '../sip/message.ts';
import type { Peer } from '../sip/transport.ts';
import { formatUri, parseRequestUri } from '../sip/uri.ts';
import { flowOf, phoneDestination } from '../sip/flow.ts';
import type { Clock, Timer } from '../util/clock.ts';
import { isOverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { LocalUser } from './call-common.ts';
import type { RegisteredPhones } from './local-phones.ts';
import { PRESENCE_NOTE_MAX, type PresenceState } from './messages.ts';
import type { PhonePresence, PresenceService } from './presence.ts';

/** Longest subscription or publication granted (s); the phone refreshes before. */
export const MAX_SUBSCRIPTION_S = 3600;
const MAX_SUBSCRIPTIONS = 10_000;

interface Subscription {
  watcher: string;
  presentity: string;
  callId: string;
  localTag: string;
  remoteTag: string;
  /** The SUBSCRIBE's From (the NOTIFY's To) and To with our tag (the NOTIFY's From). */
  remote: string;
  local: string;
  target: SipUri;
  dest: Peer;
  cseq: number;
  until: number;
  timer: Timer;
  last: PresenceState;
}

/** RFC 3863 PIDF for `entity` in state `s` (one tuple; the note escaped). */
export function pidf(entity: string, s: PresenceState): string {
  const note = s.note ? `  <note>${escapeXml(s.note)}</note>\r\n` : '';
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\r\n' +
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${escapeXml(entity)}">\r\n` +
    `  <tuple id="t1">\r\n    <status><basic>${s.open ? 'open' : 'closed'}</basic></status>\r\n  </tuple>\r\n` +
    note +
    '</presence>\r\n'
  );
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function unescapeXml(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d{1,6});/g, (_, n) => String.fromCodePoint(Math.min(Number(n), 0x10ffff)))
    .replace(/&amp;/g, '&');
}

/**
 * Status and note of a PIDF document a phone published (RFC 3863): the first tuple's basic (`open`/`closed`;
 * anything else leaves the status to the registration), the first note, or else the first RPID activity
 * (RFC 4480, e.g. `busy`, `away`) as the note. Undefined when it is not a presence document.
 */
export function readPidf(xml: string): { open?: boolean; note?: string } | undefined {
  if (!/<(?:\w+:)?presence[\s>]/.test(xml)) return undefined;
  const basic = /<(?:\w+:)?basic>\s*([A-Za-z]+)\s*<\/(?:\w+:)?basic>/i.exec(xml)?.[1]?.toLowerCase();
  const note = /<(?:\w+:)?note(?:\s[^>]*)?>([^<]{0,1024})<\/(?:\w+:)?note>/i.exec(xml);
  const activity = /<(?:\w+:)?activities>\s*<(?:\w+:)?([A-Za-z-]{1,40})\s*\/?>/i.exec(xml)?.[1];
  const text = (note ? unescapeXml(note[1]).trim() : (activity ?? '')).slice(0, PRESENCE_NOTE_MAX);
  return {
    ...(basic === 'open' || basic === 'closed' ? { open: basic === 'open' } : {}),
    ...(text ? { note: text } : {}),
  };
}

/** The event package a SUBSCRIBE or PUBLISH names (RFC 6665 8.2.1), lower-cased. */
function eventOf(req: SipRequest): string {
  return (getHeader(req, 'Event') ?? '').split(';')[0].trim().toLowerCase();
}

export class PhoneSubscriptions implements PhonePresence {
  private readonly element: SipElement;
  private readonly phones: RegisteredPhones;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly subs = new Map<string, Subscription>();

  constructor(c: { element: SipElement; phones: RegisteredPhones; clock: Clock; logger: Logger }) {
    this.element = c.element;
    this.phones = c.phones;
    this.clock = c.clock;
    this.log = c.logger.child({ component: 'phone-presence' });
  }

  online(name: string): boolean {
    return this.phones.bindingsOf(name).length > 0;
  }

  subscribed(watcher: string, presentity: string): boolean {
    for (const s of this.subs.values()) if (s.watcher === watcher && s.presentity === presentity) return true;
    return false;
  }

  notify(watcher: string, presentity: string, state: PresenceState): void {
    for (const s of this.subs.values())
      if (s.watcher === watcher && s.presentity === presentity) {
        s.last = state;
        this.sendNotify(s);
      }
  }

  get size(): number {
    return this.subs.size;
  }

  /** A phone's SUBSCRIBE outside any dialog, sent as `watcher`: watch through the overlay, accept, NOTIFY. */
  async subscribe(inc: IncomingRequest, watcher: LocalUser, presence: PresenceService): Promise<void> {
    const req = inc.request;
    if (eventOf(req) !== 'presence') {
      inc.respond(489, 'Bad Event', { headers: [{ name: 'Allow-Events', value: 'presence' }] });
      return;
    }
    const uri = parseRequestUri(req.uri);
    const presentity = uri.ok ? (uri.value.user ?? '') : '';
    const contacts = parseContacts(req);
    const contact = contacts.ok && contacts.value !== '*' ? contacts.value[0] : undefined;
    const from = getFrom(req);
    const fromTag = from.ok ? getTag(from.value) : undefined;
    // NOTIFYs go where the SUBSCRIBE came from when the Contact does not reach the phone (NAT, TCP, WebSocket).
    const dest = contact ? phoneDestination(contact.uri, flowOf(inc.source), inc.source.transport) : undefined;
    if (!contact || !dest || fromTag === undefined) {
      inc.respond(400, 'Bad Request: SUBSCRIBE needs a From tag and a Contact with an IP address');
      return;
    }
    if (this.subs.size >= MAX_SUBSCRIPTIONS) {
      inc.respond(503, 'Service Unavailable: too many subscriptions', {
        headers: [{ name: 'Retry-After', value: '60' }],
      });
      return;
    }
    const expires = Math.min(getExpires(req) ?? MAX_SUBSCRIPTION_S, MAX_SUBSCRIPTION_S);
    let state: PresenceState;
    try {
      state = await presence.watch(watcher, presentity);
    } catch (e) {
      if (isOverlayError(e, 'USER_UNKNOWN')) {
        inc.respond(404, `Not Found: ${presentity} is not a user`);
        return;
      }
      if (isOverlayError(e) && ['VERIFICATION_FAILED', 'IDENTITY_BAD_SIGNATURE'].includes(e.code)) {
        inc.respond(403, e.message.replace(/[\r\n]/g, ' '));
        return;
      }
      // Unreachable or slow: subscribed all the same, showing the presentity closed until a WATCH gets through.
      state = { ...presence.stateOf(presentity), open: false };
    }
    if (inc.finalSent) return;
    const resp = inc.respond(200, 'OK', {
      headers: [
        { name: 'Expires', value: String(expires) },
        { name: 'Contact', value: `<sip:${this.element.hostport}>` },
      ],
    });
    const to = getTo(resp);
    const localTag = to.ok ? getTag(to.value) : undefined;
    const callId = getHeader(req, 'Call-ID');
    if (!localTag || !callId) return;
    const s: Subscription = {
      watcher: watcher.name,
      presentity,
      callId,
      localTag,
      remoteTag: fromTag,
      remote: getHeader(req, 'From') ?? '',
      local: `${getHeader(req, 'To') ?? ''};tag=${localTag}`,
      target: contact.uri,
      dest,
      cseq: 0,
      until: 0,
      timer: this.clock.setTimer(0, () => {}),
      last: state,
    };
    this.subs.set(this.key(callId, localTag, fromTag), s);
    this.extend(s, expires);
    this.log.info({ watcher: watcher.name, presentity, expires }, 'presence subscription accepted');
    this.sendNotify(s);
  }

  /**
   * A SUBSCRIBE inside one of our subscription dialogs (refresh, or end with Expires 0; RFC 6665 4.1.2.2 and
   * 4.1.2.3): answered here, true. Anything else is not ours: false.
   */
  inDialog(inc: IncomingRequest): boolean {
    const req = inc.request;
    if (req.method !== 'SUBSCRIBE') return false;
    const to = getTo(req);
    const from = getFrom(req);
    const callId = getHeader(req, 'Call-ID');
    const localTag = to.ok ? getTag(to.value) : undefined;
    const remoteTag = from.ok ? getTag(from.value) : undefined;
    if (!callId || !localTag || !remoteTag) return false;
    const key = this.key(callId, localTag, remoteTag);
    const s = this.subs.get(key);
    if (!s) return false;
    const expires = Math.min(getExpires(req) ?? MAX_SUBSCRIPTION_S, MAX_SUBSCRIPTION_S);
    inc.respond(200, 'OK', { headers: [{ name: 'Expires', value: String(expires) }] });
    if (expires === 0) this.end(key, s, 'noresource');
    else {
      this.extend(s, expires);
      this.sendNotify(s);
    }
    return true;
  }

  /** End every subscription (the adapter is closing): a terminated NOTIFY each. */
  close(): void {
    for (const [key, s] of this.subs) this.end(key, s, 'deactivated');
  }

  private key(callId: string, localTag: string, remoteTag: string): string {
    return `${callId}\u0000${localTag}\u0000${remoteTag}`;
  }

  private extend(s: Subscription, expiresS: number): void {
    s.timer.cancel();
    s.until = this.clock.now() + expiresS * 1000;
    const key = this.key(s.callId, s.localTag, s.remoteTag);
    s.timer = this.clock.setTimer(expiresS * 1000, () => this.end(key, s, 'timeout'));
  }

  private end(key: string, s: Subscription, reason: string): void {
    s.timer.cancel();
    this.subs.delete(key);
    this.sendNotify(s, `terminated;reason=${reason}`);
  }

  private sendNotify(s: Subscription, subscriptionState?: string): void {
    const remaining = Math.max(0, Math.ceil((s.until - this.clock.now()) / 1000));
    const host = this.element.hostport;
    const body = new TextEncoder().encode(pidf(`sip:${s.presentity}@${host}`, s.last));
    const req: SipRequest = {
      kind: 'request',
      method: 'NOTIFY',
      uri: formatUri(s.target),
      version: 'SIP/2.0',
      headers: [
        { name: 'Via', value: this.element.via(s.dest.transport) },
        { name: 'Max-Forwards', value: '70' },
        { name: 'From', value: s.local },
        { name: 'To', value: s.remote },
        { name: 'Call-ID', value: s.callId },
        { name: 'CSeq', value: `${++s.cseq} NOTIFY` },
        { name: 'Contact', value: `<sip:${host}>` },
        { name: 'Event', value: 'presence' },
        { name: 'Subscription-State', value: subscriptionState ?? `active;expires=${remaining}` },
        { name: 'Content-Type', value: 'application/pidf+xml' },
      ],
      body,
    };
    this.element.request(req, s.dest, {
      onResponse: (r) => {
        // RFC 6665 4.1.3: a 481 means the subscriber has forgotten the subscription.
        if (r.status === 481) this.subs.delete(this.key(s.callId, s.localTag, s.remoteTag));
      },
    });
  }
}

/** A phone's PUBLISH (RFC 3903) for its own user: status and note for the watchers, 200 with an entity tag. */
export function acceptPublish(inc: IncomingRequest, user: LocalUser, presence: PresenceService): void {
  const req = inc.request;
  if (eventOf(req) !== 'presence') {
    inc.respond(489, 'Bad Event', { headers: [{ name: 'Allow-Events', value: 'presence' }] });
    return;
  }
  const uri = parseRequestUri(req.uri);
  if (!uri.ok || uri.value.user !== user.name) {
    inc.respond(403, `Forbidden: ${user.name} may publish only its own presence`);
    return;
  }
  const expires = Math.min(getExpires(req) ?? MAX_SUBSCRIPTION_S, MAX_SUBSCRIPTION_S);
  let status: { open?: boolean; note?: string } | undefined;
  if (req.body.length > 0) {
    const type = (getHeader(req, 'Content-Type') ?? '').split(';')[0].trim().toLowerCase();
    status = type === 'application/pidf+xml' ? readPidf(new TextDecoder().decode(req.body)) : undefined;
    if (!status) {
      inc.respond(415, 'Unsupported Media Type', { headers: [{ name: 'Accept', value: 'application/pidf+xml' }] });
      return;
    }
  }
  presence.publish(user.name, status, expires);
  inc.respond(200, 'OK', {
    headers: [
      { name: 'SIP-ETag', value: getHeader(req, 'SIP-If-Match') ?? newToken(8) },
      { name: 'Expires', value: String(expires) },
    ],
  });
}
