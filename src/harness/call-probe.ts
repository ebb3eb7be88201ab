/**
 * A phone reduced to what the seed measured (seed 000 section VI, "call
 * setup: INVITE sent to 302 received"): it sends an INVITE to its adapter and
 * reports the final answer and how long it took. The INVITE client
 * transaction ACKs the 302 itself (RFC 3261 17.1.1.3); the redirect is not
 * followed. Used by the demo and the benchmark.
 */
import { newToken, type SipElement } from '../sip/element.ts';
import { getHeader, type SipRequest, type SipResponse } from '../sip/message.ts';
import type { Peer } from '../sip/transport.ts';

export interface ProbeResult {
  status: number;
  reason: string;
  /** Contact of a 3xx (the callee's phone), if any. */
  contact?: string;
  /** Retry-After of the final answer, if any (a 503 from an adapter not ready yet). */
  retryAfter?: string;
  ms: number;
}

let seq = 0;

/** INVITE `sip:<callee>@<adapter>` as `<caller>` and resolve with the final response and the elapsed time. */
export function probeInvite(
  element: SipElement,
  o: { caller: string; callee: string; adapter: Peer; domain?: string; timeoutMs?: number },
): Promise<ProbeResult> {
  const hostport = `${o.adapter.address}:${o.adapter.port}`;
  const domain = o.domain ?? hostport;
  const callId = `${newToken(8)}-${++seq}@${element.hostport}`;
  const host = element.transport.local.host;
  const sdp = `v=0\r\no=${o.caller} 1 1 IN IP4 ${host}\r\ns=-\r\nc=IN IP4 ${host}\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n`;
  const req: SipRequest = {
    kind: 'request',
    method: 'INVITE',
    uri: `sip:${o.callee}@${hostport}`,
    version: 'SIP/2.0',
    headers: [
      { name: 'Via', value: element.via(o.adapter.transport) },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: `<sip:${o.caller}@${domain}>;tag=${newToken(6)}` },
      { name: 'To', value: `<sip:${o.callee}@${domain}>` },
      { name: 'Call-ID', value: callId },
      { name: 'CSeq', value: '1 INVITE' },
      { name: 'Contact', value: `<sip:${o.caller}@${element.hostport}>` },
      { name: 'Content-Type', value: 'application/sdp' },
    ],
    body: Buffer.from(sdp),
  };
  const started = performance.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (status: number, reason: string, resp?: SipResponse) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const contact = resp ? getHeader(resp, 'Contact') : undefined;
      const retryAfter = resp ? getHeader(resp, 'Retry-After') : undefined;
      resolve({ status, reason, contact, retryAfter, ms: performance.now() - started });
    };
    const timer = setTimeout(() => finish(408, 'Request Timeout (probe)'), o.timeoutMs ?? 32_000);
    element.request(req, o.adapter, {
      onResponse: (r) => {
        if (r.status >= 200) finish(r.status, r.reason, r);
      },
      onTimeout: () => finish(408, 'Request Timeout'),
      onTransportError: () => finish(503, 'Transport Error'),
    });
  });
}
