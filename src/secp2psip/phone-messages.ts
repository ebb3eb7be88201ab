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
import type { IncomingRequest, SipElement } from '../sip/element.ts';
import { newToken } from '../sip/element.ts';
import { getHeader, type SipRequest, type SipUri } from '../sip/message.ts';
import { formatUri, parseRequestUri } from '../sip/uri.ts';
import { peerOf } from '../sip/user-agent.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import type { LocalUser } from './call-common.ts';
import type { RegisteredPhones } from './local-phones.ts';
import { MAX_IM_BODY, type MessagingContext, type PhoneInbox, sendIm } from './messaging.ts';

/** How long a phone may take to answer a delivered MESSAGE before it counts as not taken (ms). */
export const PHONE_ANSWER_MS = 4000;

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
    const bindings = this.phones.bindingsOf(to);
    return Promise.all(bindings.map((b) => this.sendOne(to, from, body, contentType, b.contact.uri))).then(
      (taken) => taken.filter(Boolean).length,
    );
  }

  private sendOne(
    to: string,
    from: string,
    body: Uint8Array,
    contentType: string | undefined,
    contact: SipUri,
  ): Promise<boolean> {
    const dest = peerOf(contact);
    if (!dest) return Promise.resolve(false);
    const host = this.element.hostport;
    // RFC 3261 10.2.1 / 8.1.1.1: the registered contact is the Request-URI.
    const target = formatUri(contact);
    const headers = [
      { name: 'Via', value: this.element.via(dest.transport) },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: `<sip:${from}@${host}>;tag=${newToken(6)}` },
      { name: 'To', value: `<sip:${to}@${host}>` },
      { name: 'Call-ID', value: `${newToken(10)}@${host}` },
      { name: 'CSeq', value: `${++this.seq} MESSAGE` },
      ...(contentType ? [{ name: 'Content-Type', value: contentType }] : []),
    ];
    const req: SipRequest = { kind: 'request', method: 'MESSAGE', uri: target, version: 'SIP/2.0', headers, body };
    return new Promise((resolve) => {
      let done = false;
      const finish = (ok: boolean, why: string) => {
        if (done) return;
        done = true;
        timer.cancel();
        if (!ok) this.log.info({ user: to, contact: target, why }, 'phone did not take the message');
        resolve(ok);
      };
      const timer = this.clock.setTimer(PHONE_ANSWER_MS, () => finish(false, 'no answer in time'));
      this.element.request(req, dest, {
        onResponse: (r) => {
          if (r.status >= 200) finish(r.status < 300, `${r.status} ${r.reason}`);
        },
        onTimeout: () => finish(false, 'timeout'),
        onTransportError: () => finish(false, 'transport error'),
      });
    });
  }
}
