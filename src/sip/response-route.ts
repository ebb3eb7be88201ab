import { parseVia } from './header-values.ts';
import { getHeader, type SipRequest, type Via } from './message.ts';
import { isStream, type Peer, viaDestination } from './transport.ts';

/**
 * Where the responses of a server transaction go: the rule that keeps an element from being used to reflect or
 * amplify traffic towards a third party.
 *
 * - A request not (yet) authenticated by the layer above is answered only where it came from: over a stream, on
 *   the connection it arrived on (never a new connection: if that one is closed, the response is dropped); over
 *   UDP, to the packet's source address, at the `rport` port (RFC 3581 section 4) or else the sent-by port. The
 *   top Via's `maddr` and a sent-protocol other than the one used are ignored, as Kamailio and OpenSIPS do for
 *   requests they have not authenticated: otherwise a `Via ...;maddr=<victim>` turns one INVITE into a dozen
 *   datagrams (a 100, the final response and its Timer G retransmissions) at the victim, or a TCP Via makes the
 *   element connect out to any host and port.
 * - An authenticated request (the application set `IncomingRequest.authenticated`) is routed as RFC 3261
 *   section 18.2.2 and RFC 3581 section 5 say: the connection it came on while open, else the top Via's `maddr`,
 *   `received`/`rport` or sent-by (a new connection if needed).
 */
/**
 * Timer G retransmissions of a final response to an unauthenticated INVITE over UDP (RFC 3261 17.2.1 allows about
 * ten before Timer H): with the 100 and the response itself, at most 5 datagrams answer one request datagram,
 * even when its source address is forged. Four copies of the final response at 0, 0.5, 1.5 and 3.5 s make its
 * loss unlikely; a client that still misses it has its own Timer B.
 */
export const UNAUTHENTICATED_RETRANSMISSIONS = 3;

/**
 * The same bound while admission control has the socket's receive queue bounded (the process is saturated and the
 * kernel drops datagrams): one copy at T1. A lost final response is still recovered by the client, whose
 * retransmitted INVITE gets it again (17.2.1); what further Timer G copies would buy is an earlier end of a
 * transaction whose ACK the full queue dropped, at the price of a send each, and of the ACK each brings back
 * into that queue (17.1.1.2), while the requests of new callers wait.
 */
export const SATURATED_RETRANSMISSIONS = 1;

export interface ResponseRoutes {
  /** For an unauthenticated request: the source only. */
  readonly source: Peer;
  /** For an authenticated one: RFC 3261 18.2.2 with RFC 3581. */
  readonly via: Peer;
}

export function responseRoutes(req: SipRequest, source: Peer, topVia?: Via): ResponseRoutes {
  let via = topVia;
  if (!via) {
    const raw = getHeader(req, 'Via');
    const parsed = raw === undefined ? undefined : parseVia(raw);
    via = parsed?.ok ? parsed.value : undefined;
  }
  if (isStream(source.transport)) {
    const follow = via ? viaDestination(via, source) : source;
    return {
      source: {
        transport: source.transport,
        address: source.address,
        port: source.port,
        connId: source.connId,
        connectionOnly: true,
      },
      via: { transport: source.transport, address: follow.address, port: follow.port, connId: source.connId },
    };
  }
  const onSource: Peer = { transport: 'UDP', address: source.address, port: sourcePort(via, source) };
  // Most requests are never authenticated by the layer above (a registrar without digest): the Via route is
  // worked out only when it is first asked for.
  return via ? new LazyViaRoutes(onSource, via, source) : { source: onSource, via: onSource };
}

class LazyViaRoutes implements ResponseRoutes {
  readonly source: Peer;
  private readonly topVia: Via;
  private readonly from: Peer;
  private route: Peer | undefined = undefined;

  constructor(source: Peer, topVia: Via, from: Peer) {
    this.source = source;
    this.topVia = topVia;
    this.from = from;
  }

  get via(): Peer {
    this.route ??= viaDestination(this.topVia, this.from);
    return this.route;
  }
}

/** RFC 3581 section 4: with `rport` the response goes to the source port; without, RFC 3261 18.2.2 uses sent-by's. */
function sourcePort(via: Via | undefined, source: Peer): number {
  if (!via) return source.port;
  for (const [k] of via.params) if (k === 'rport') return source.port;
  return via.port ?? 5060;
}
