/**
 * Instant messages at an adapter's SIP half (RFC 3428): a phone's MESSAGE
 * for `sip:bob@<adapter>` goes through messaging.ts `sendIm`; a verified
 * message for a local user goes out to each of that user's registered phones
 * (`PhoneMessenger`, the PhoneInbox port of the overlay half).
 *
 * What the sender's phone is answered (RFC 3428 7): 200 once the recipient's
 * adapter signed that a phone of the recipient took it; 413 for a body over
 * MAX_IM_BODY; 415 for a body without a Content-Type; otherwise the mapped
 * refusal (404 unknown user, 403 verification failed with its reason, 480 no
 * phone of the recipient registered and no room in the mailbox, 408 no answer in time); 202 once the
 * message was stored in the recipient's mailbox in the ring (mailbox.ts) because the recipient's adapter
 * could not be reached or had no phone to take it.
 *
 * What the recipient's phone gets is built here, not relayed: From is the
 * verified sender as `sip:<sender>@<this adapter>` (so a reply comes back
 * through this adapter), To the phone's own address of record, fresh Call-ID
 * and tags, and only the body and Content-Type of the sender's MESSAGE.
 */
import { deliverToContacts } from '../sip/deliver-message.ts';
import type { IncomingRequest, SipElement } from '../sip/element.ts';
import { getHeader } from '../sip/message.ts';
import { parseRequestUri } from '../sip/uri.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import type { LocalUser } from './call-common.ts';
import type { RegisteredPhones } from './local-phones.ts';
import { MAX_IM_BODY, type MessagingContext, type PhoneInbox, sendIm } from './messaging.ts';

/** Sender's side at the SIP edge: answer the phone's MESSAGE for `sip:<to>@<adapter>`. */
export async function relayPhoneMessage(ctx: MessagingContext, inc: IncomingRequest, sender: LocalUser): Promise<void> {
  const req = inc.request;
  if (req.body.length > MAX_IM_BODY) {
    inc.respond(413, `Request Entity Too Large: at most ${MAX_IM_BODY} bytes of message`);
    return;
  }
  if (req.body.length > 0 && getHeader(req, 'Content-Type') === undefined) {
    inc.respond(415, 'Unsupported Media Type: a message body needs a Content-Type');
    return;
  }
  const uri = parseRequestUri(req.uri);
  const to = uri.ok ? (uri.value.user ?? '') : '';
  const out = await sendIm(ctx, req, sender, to);
  if (inc.finalSent) return;
  // RFC 3428 7: 202 when the message was accepted but not (yet) delivered: stored for the offline recipient.
  if (out.ok && out.stored) inc.respond(202, 'Accepted: stored for the recipient');
  else if (out.ok) inc.respond(200, 'OK');
  else if (out.retryAfterS !== undefined)
    inc.respond(out.status, out.reason, { headers: [{ name: 'Retry-After', value: String(out.retryAfterS) }] });
  else inc.respond(out.status, out.reason);
}

/** The PhoneInbox of a real adapter: MESSAGE requests to the registered phones over its SIP element. */
export class PhoneMessenger implements PhoneInbox {
  private readonly element: SipElement;
  private readonly phones: RegisteredPhones;
  private readonly clock: Clock;
  private readonly log: Logger;
  private seq = 0;

  constructor(c: { element: SipElement; phones: RegisteredPhones; clock: Clock; logger: Logger }) {
    this.element = c.element;
    this.phones = c.phones;
    this.clock = c.clock;
    this.log = c.logger.child({ component: 'phone-messages' });
  }

  deliver(to: string, from: string, body: Uint8Array, contentType: string | undefined): Promise<number> {
    const host = this.element.hostport;
    return deliverToContacts(
      { element: this.element, clock: this.clock, log: this.log },
      this.phones.bindingsOf(to).map((b) => ({ uri: b.contact.uri, flow: b.flow })),
      { from: `sip:${from}@${host}`, to: `sip:${to}@${host}`, body, contentType },
      () => ++this.seq,
    );
  }
}
