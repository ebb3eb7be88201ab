import { silentLogger, type Logger } from '../util/log.ts';
import type { IncomingRequest, SipElement } from './element.ts';
import { getMaxForwards } from './header-values.ts';
import type { Header, SipRequest, SipResponse } from './message.ts';
import { buildCancel } from './transaction-client-invite.ts';
import type { ClientTransaction } from './transaction-layer.ts';
import type { Peer } from './transport.ts';

export interface ProxyTarget {
  /** New Request-URI (16.6 step 2), e.g. the verified contact of the callee. */
  uri: string;
  /** Where to send it. */
  dest: Peer;
  /** Record-Route values to insert before the request's own (16.6 step 4), e.g. FlowRoutes.recordRoute. */
  recordRoute?: Header[];
}

/**
 * Stateful forwarding of one request to one target (RFC 3261 section 16, no forking, no Record-Route). Used when a
 * phone sends an already-redirected INVITE back through its adapter: the adapter proxies it to the verified
 * contact instead of redirecting again. Responses are relayed upstream (16.7), a CANCEL is forwarded (16.10).
 */
export class StatefulProxy {
  private readonly element: SipElement;
  private readonly log: Logger;
  readonly stats = { forwarded: 0, relayed: 0, cancelled: 0, timeouts: 0 };

  constructor(components: { element: SipElement; logger?: Logger }) {
    this.element = components.element;
    this.log = components.logger ?? silentLogger;
  }

  /** Forward `inc` to `target`; returns the client transaction, or undefined when refused (483 sent). */
  forward(inc: IncomingRequest, target: ProxyTarget): ClientTransaction | undefined {
    const req = inc.request;
    // 16.3 step 3: "If the request has a Max-Forwards value of zero, the proxy ... MUST return 483".
    const mf = getMaxForwards(req);
    if (mf === 0) {
      inc.respond(483, 'Too Many Hops');
      return undefined;
    }
    const out = this.copyForTarget(req, target, mf);
    let provisional = false;
    let cancelPending = false;
    let tx: ClientTransaction | undefined;
    const sendCancel = (): void => {
      if (!tx) return;
      this.stats.cancelled++;
      this.element.request(buildCancel(out), target.dest, {});
    };
    tx = this.element.request(out, target.dest, {
      onResponse: (resp) => {
        if (resp.status < 200) {
          provisional = true;
          if (cancelPending) {
            cancelPending = false;
            sendCancel();
          }
          // 16.7 step 5: "Any response ... other than 100 (Trying) MUST be forwarded" -- the 100 is hop-by-hop.
          if (resp.status === 100) return;
        }
        this.relay(inc, resp);
      },
      onTimeout: () => {
        // 16.8: "If the timer C [or the client transaction] fires ... the proxy MUST ... 408 (Request Timeout)".
        this.stats.timeouts++;
        if (!inc.finalSent) inc.respond(408, 'Request Timeout');
      },
      // 16.7 step 5 / 16.9: a transport error counts as a 503 from that target.
      onTransportError: () => {
        if (!inc.finalSent) inc.respond(503, 'Service Unavailable');
      },
    });
    this.stats.forwarded++;
    if (req.method === 'INVITE') {
      inc.onCancel(() => {
        // 16.10 and 9.1: forward the CANCEL, but not before a provisional response has arrived.
        if (provisional) sendCancel();
        else cancelPending = true;
      });
    }
    return tx;
  }

  /** 16.6: copy, retarget, decrement Max-Forwards, push our Via with a fresh branch. */
  private copyForTarget(req: SipRequest, target: ProxyTarget, mf: number | undefined): SipRequest {
    const headers = req.headers
      .filter((h) => h.name.toLowerCase() !== 'max-forwards')
      .map((h) => ({ name: h.name, value: h.value }));
    // 16.6 step 3: "If the copy contains a Max-Forwards header field, the proxy MUST decrement its value by
    // one (1). If the copy does not contain a Max-Forwards header field, the proxy MUST add one with a field
    // value, which SHOULD be 70."
    headers.unshift({ name: 'Max-Forwards', value: String(mf === undefined ? 70 : mf - 1) });
    // 16.6 step 4: "the proxy MUST insert a Record-Route header field value ... before any existing Record-Route".
    if (target.recordRoute) {
      const at = headers.findIndex((h) => h.name.toLowerCase() === 'record-route');
      headers.splice(at < 0 ? headers.length : at, 0, ...target.recordRoute);
    }
    // 16.6 step 8: "The proxy MUST insert a Via header field value into the copy before the existing Via header
    // field values."
    headers.unshift({ name: 'Via', value: this.element.via(target.dest.transport) });
    return { kind: 'request', method: req.method, uri: target.uri, version: req.version, headers, body: req.body };
  }

  /** 16.7 step 3 and 9: remove the topmost Via (ours) and pass the response to the server transaction. */
  private relay(inc: IncomingRequest, resp: SipResponse): void {
    const idx = resp.headers.findIndex((h) => h.name.toLowerCase() === 'via');
    if (idx < 0) return;
    const headers = resp.headers.slice();
    headers.splice(idx, 1);
    if (!headers.some((h) => h.name.toLowerCase() === 'via')) {
      // 16.7 step 3: "If no Via header field values remain in the response, the response was meant for this
      // element and MUST NOT be forwarded."
      this.log.debug({ status: resp.status }, 'response without a Via left for upstream: not relayed');
      return;
    }
    this.stats.relayed++;
    inc.sendResponse({ ...resp, headers });
  }
}
