/**
 * Staying in a dialog's path over two flows (RFC 5626 5.3, RFC 5658 double
 * record-routing). When an element forwards an INVITE between a phone that is
 * reachable only over its flow and another party, it puts two Record-Route
 * values into the INVITE, each naming one of the two flows by a flow token:
 *
 *   Record-Route: <sip:us;lr;fl=TOKEN(downstream flow)>     (top)
 *   Record-Route: <sip:us;lr;fl=TOKEN(upstream flow)>
 *
 * The callee's route set is the list as is, the caller's is it reversed
 * (RFC 3261 12.1.1, 12.1.2), so an in-dialog request from either side carries
 * both values, the one naming the *other* side's flow last. The element pops
 * its own Route values (16.4) and sends the request over the flow the last
 * one names: a BYE from the callee reaches the caller over the connection the
 * caller opened, and the reverse. Nothing is stored per dialog.
 */
import type { SipElement } from './element.ts';
import type { FlowTokens } from './flow.ts';
import { parseNameAddr, splitTopLevel } from './header-values.ts';
import type { Header, SipRequest } from './message.ts';
import type { Peer } from './transport.ts';

/** The URI parameter carrying a flow token in our Record-Route values. */
export const FLOW_PARAM = 'fl';

/** `;transport=` for a URI that must be reached over `t` (UDP is the default, RFC 3261 19.1.1). */
export function transportParam(t: string): string {
  return t === 'UDP' ? '' : `;transport=${t.toLowerCase()}`;
}

/** The host:port by which the side at `peer` reaches this element, when it is not the advertised one. */
export type FacingAddress = (peer: Peer) => string | undefined;

export class FlowRoutes {
  private readonly element: SipElement;
  private readonly tokens: FlowTokens;
  private readonly facing: FacingAddress;

  constructor(c: { element: SipElement; tokens: FlowTokens; facing?: FacingAddress }) {
    this.element = c.element;
    this.tokens = c.tokens;
    this.facing = c.facing ?? (() => undefined);
  }

  /**
   * The host:port the side at `peer` reaches us at: on our LAN our LAN address (UDP and TCP), else the advertised
   * one of the flow's transport (the TLS port for a TLS flow).
   */
  hostportFor(peer: Peer): string {
    const lan = peer.transport === 'UDP' || peer.transport === 'TCP' ? this.facing(peer) : undefined;
    return lan ?? this.element.hostportOf(peer.transport);
  }

  /**
   * The two Record-Route values for an INVITE forwarded from `upstream` towards `downstream`, top first. Each names
   * us by the address its side reaches us at (RFC 5658: a multi-homed element record-routes per interface; a
   * WebSocket phone sends everything over its own connection whatever the URI says, RFC 7118 section 5).
   */
  recordRoute(upstream: Peer, downstream: Peer): Header[] {
    const uri = (flow: Peer) =>
      `<sip:${this.hostportFor(flow)}${transportParam(flow.transport)};lr;${FLOW_PARAM}=${this.tokens.flow(flow)}>`;
    return [
      { name: 'Record-Route', value: uri(downstream) },
      { name: 'Record-Route', value: uri(upstream) },
    ];
  }

  /** Insert `recordRoute(...)` before the request's existing Record-Route values (RFC 3261 16.6 step 4). */
  addRecordRoute(req: SipRequest, upstream: Peer, downstream: Peer): void {
    const at = req.headers.findIndex((h) => h.name.toLowerCase() === 'record-route');
    req.headers.splice(at < 0 ? req.headers.length : at, 0, ...this.recordRoute(upstream, downstream));
  }

  /**
   * For a request inside a dialog we record-routed: remove our Route values from the top (16.4) and return the flow
   * the last of them names; undefined (and the request unchanged) when the top Route is not one of ours.
   */
  popOwn(req: SipRequest): Peer | undefined {
    const values: string[] = [];
    const idx: number[] = [];
    req.headers.forEach((h, i) => {
      if (h.name.toLowerCase() !== 'route') return;
      for (const v of splitTopLevel(h.value, ',')) {
        values.push(v.trim());
        idx.push(i);
      }
    });
    let flow: Peer | undefined;
    let n = 0;
    for (; n < values.length; n++) {
      const f = this.ownFlow(values[n]);
      if (!f) break;
      flow = f;
    }
    if (n === 0 || !flow) return undefined;
    const rest = values.slice(n);
    const first = idx[0];
    req.headers = req.headers.filter((h) => h.name.toLowerCase() !== 'route');
    if (rest.length > 0)
      req.headers.splice(Math.min(first, req.headers.length), 0, { name: 'Route', value: rest.join(', ') });
    return flow;
  }

  /** Whether the request's top Route is one of ours (without changing it). */
  isOwnRoute(req: SipRequest): boolean {
    const h = req.headers.find((x) => x.name.toLowerCase() === 'route');
    if (!h) return false;
    const top = splitTopLevel(h.value, ',')[0];
    return top !== undefined && this.ownFlow(top.trim()) !== undefined;
  }

  private ownFlow(value: string): Peer | undefined {
    const n = parseNameAddr(value);
    if (!n.ok) return undefined;
    const tok = n.value.uri.params.find(([k]) => k === FLOW_PARAM)?.[1];
    return tok ? this.tokens.openFlow(tok) : undefined;
  }
}
