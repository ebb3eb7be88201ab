/**
 * Sending a MESSAGE (RFC 3428) that a server built itself to each registered
 * contact of a user, as a UAC (RFC 3261 8.1): a fresh Call-ID, From tag and
 * branch per contact, the registered contact as the Request-URI (10.2.1),
 * and a bound on how long a phone may take to answer. Used by the SecP2PSIP
 * adapter and the WhanauSIP node to hand a verified message to their phones.
 * A phone its Contact does not reach (behind a NAT, a TCP ephemeral port, a
 * browser on WebSocket) gets it over the flow it registered on (sip/flow.ts).
 */
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import { newToken, type SipElement } from './element.ts';
import type { SipRequest, SipUri } from './message.ts';
import { phoneDestination } from './flow.ts';
import type { Peer } from './transport.ts';
import { formatUri } from './uri.ts';

/** How long a phone may take to answer a delivered MESSAGE before it counts as not taken (ms). */
export const PHONE_ANSWER_MS = 4000;

export interface OutgoingMessage {
  /** From and To URIs (without tags). */
  from: string;
  to: string;
  body: Uint8Array;
  contentType: string | undefined;
}

/** Send `m` to every contact; resolves with how many answered 2xx within PHONE_ANSWER_MS. */
export async function deliverToContacts(
  c: { element: SipElement; clock: Clock; log: Logger },
  contacts: readonly { uri: SipUri; flow?: Peer }[],
  m: OutgoingMessage,
  nextSeq: () => number,
): Promise<number> {
  const taken = await Promise.all(contacts.map((t) => sendOne(c, t.uri, t.flow, m, nextSeq())));
  return taken.filter(Boolean).length;
}

function sendOne(
  c: { element: SipElement; clock: Clock; log: Logger },
  contact: SipUri,
  flow: Peer | undefined,
  m: OutgoingMessage,
  seq: number,
): Promise<boolean> {
  const dest = phoneDestination(contact, flow);
  if (!dest) return Promise.resolve(false);
  const host = c.element.hostport;
  const target = formatUri(contact);
  const headers = [
    { name: 'Via', value: c.element.via(dest.transport) },
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: `<${m.from}>;tag=${newToken(6)}` },
    { name: 'To', value: `<${m.to}>` },
    { name: 'Call-ID', value: `${newToken(10)}@${host}` },
    { name: 'CSeq', value: `${seq} MESSAGE` },
    ...(m.contentType ? [{ name: 'Content-Type', value: m.contentType }] : []),
  ];
  const req: SipRequest = {
    kind: 'request',
    method: 'MESSAGE',
    uri: target,
    version: 'SIP/2.0',
    headers,
    body: m.body,
  };
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean, why: string) => {
      if (done) return;
      done = true;
      timer.cancel();
      if (!ok) c.log.info({ contact: target, why }, 'phone did not take the message');
      resolve(ok);
    };
    const timer = c.clock.setTimer(PHONE_ANSWER_MS, () => finish(false, 'no answer in time'));
    c.element.request(req, dest, {
      onResponse: (r) => {
        if (r.status >= 200) finish(r.status < 300, `${r.status} ${r.reason}`);
      },
      onTimeout: () => finish(false, 'timeout'),
      onTransportError: () => finish(false, 'transport error'),
    });
  });
}
