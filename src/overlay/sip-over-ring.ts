/**
 * SIP between two overlay members (two SecP2PSIP adapters, two WhanauSIP
 * nodes or a node and a gateway) over the link between them, for calls where
 * one of them is behind a NAT (docs/design.md "Adapters behind NAT"). Its
 * phones sit behind the same NAT, so the caller's phone cannot send its
 * INVITE to the callee's adapter (nor the callee's phone its BYE to the
 * caller's): both members stay in the call's path and carry its SIP to each
 * other as RPC requests
 * (`secp2psip.sip`, the bytes of one SIP message) over the TLS link between
 * them: a direct connection when one side is public, else a circuit through
 * a relay (rpc/relay.ts), TLS end to end either way, so a relay reads and
 * alters nothing.
 *
 * To the SIP stack the other member is a UDP peer at a pseudo address of
 * 198.18.0.0/15 (RFC 2544's benchmarking range, never routed), one per node
 * key: requests and responses to it are handed over here instead of to the
 * network (TransportStack.setDetour), and what it sends comes in as datagrams
 * from it (TransportStack.inject), so Via, Record-Route, flow tokens and
 * transactions work unchanged. The sip/ layer knows nothing of the ring, and
 * this module, shared by both applications, nothing of either.
 */
import type { Caller, NodeRef, Payload, RpcEndpoint } from '../rpc/types.ts';
import { keyHex } from '../rpc/tls-dial.ts';
import type { Peer } from '../sip/transport.ts';
import { OverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';

export const SIP_OVER_RING_METHOD = 'secp2psip.sip';
const MAX_SIP_BYTES = 65_535;
const SEND_TIMEOUT_MS = 5000;
/** 198.18.0.0/15: 131,072 pseudo addresses, port 5060. */
const PSEUDO_SPACE = 1 << 17;
const PSEUDO_PORT = 5060;

export interface SipCarrierStack {
  setDetour(d: { owns(to: Peer): boolean; send(buf: Buffer, to: Peer): void }): void;
  inject(buf: Buffer, source: Peer): void;
}

export interface OverlaySipStats {
  sent: number;
  received: number;
  sendFailures: number;
  bytesSent: number;
  bytesReceived: number;
}

export class OverlaySip {
  readonly stats: OverlaySipStats = { sent: 0, received: 0, sendFailures: 0, bytesSent: 0, bytesReceived: 0 };
  private readonly byKey = new Map<string, Peer>();
  private readonly byAddress = new Map<string, NodeRef>();
  private next = 1;
  private readonly log: Logger;

  constructor(
    private readonly endpoint: RpcEndpoint,
    private readonly stack: SipCarrierStack,
    logger: Logger = silentLogger,
  ) {
    this.log = logger.child({ component: 'sip-over-ring' });
    stack.setDetour({ owns: (to) => this.owns(to), send: (buf, to) => this.send(buf, to) });
  }

  /** The pseudo peer standing for the adapter `ref` (the same one for as long as this adapter runs). */
  peerFor(ref: NodeRef): Peer {
    const k = keyHex(ref.key);
    const had = this.byKey.get(k);
    if (had) {
      // Its ring address may have changed (other relays): send to the newest.
      this.byAddress.set(had.address, ref);
      return had;
    }
    const n = this.next++ % PSEUDO_SPACE;
    const address = `198.${18 + (n >> 16)}.${(n >> 8) & 0xff}.${n & 0xff}`;
    const peer: Peer = { transport: 'UDP', address, port: PSEUDO_PORT };
    this.byKey.set(k, peer);
    this.byAddress.set(address, ref);
    return peer;
  }

  owns(to: Peer): boolean {
    return to.transport === 'UDP' && this.byAddress.has(to.address);
  }

  private send(buf: Buffer, to: Peer): void {
    const ref = this.byAddress.get(to.address);
    if (!ref) return;
    this.stats.sent++;
    this.stats.bytesSent += buf.length;
    this.endpoint
      .request(ref, SIP_OVER_RING_METHOD, new Uint8Array(buf), { timeoutMs: SEND_TIMEOUT_MS })
      .catch((e: Error) => {
        // Like a lost datagram: the transaction layer retransmits or times out.
        this.stats.sendFailures++;
        this.log.debug({ to: ref.addr, err: e.message }, 'SIP over the ring not delivered');
      });
  }

  /**
   * A SIP message another adapter carried to us. Its sender is the node key TLS proved (a ring member admitted by a
   * bootstrap, checked at HELLO); what the message may do is what a datagram from that peer may do.
   */
  answer = (_method: string, payload: Payload, caller: Caller): Payload => {
    if (!(payload instanceof Uint8Array) || payload.length === 0 || payload.length > MAX_SIP_BYTES)
      throw new OverlayError('RPC_MALFORMED', 'SIP over the ring: not one SIP message');
    this.stats.received++;
    this.stats.bytesReceived += payload.length;
    // Over a link we dialled the other side sent no HELLO: its key is what TLS proved, and the link is the way back.
    const ref = caller.ref ?? { id: '', addr: caller.addr, key: caller.key };
    this.stack.inject(Buffer.from(payload), this.peerFor(ref));
    return {};
  };
}
