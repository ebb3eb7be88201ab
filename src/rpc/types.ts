/**
 * The one node-to-node transport interface. Two implementations stand behind
 * it: TLS 1.3 over TCP (`tls-endpoint.ts`) and the in-memory network with a
 * latency/loss/partition model on a simulated clock (`memory-network.ts`).
 * DHT cores and applications only ever see this interface.
 */

/** A node as others know it. `key` is pinned: a connection to `addr` that presents another key is refused. */
export interface NodeRef {
  /** 160-bit ring/node id, 40 lowercase hex. Derived from the key, or assigned in `admission`. */
  id: string;
  /** Where to reach it: `host:port` (IPv6 as `[addr]:port`). In memory: any unique string. */
  addr: string;
  /** Raw 32-byte Ed25519 public key of the node. */
  key: Uint8Array;
  /** Optional admission certificate (signed by an admission service) binding `id` to `key`. */
  admission?: Uint8Array;
}

/** Payloads are plain data encodable as deterministic CBOR: objects, arrays, strings, numbers, booleans, null, Uint8Array. */
export type Payload = unknown;

export interface RequestOptions {
  /** Per-request timeout in ms (default set by the endpoint). */
  timeoutMs?: number;
  /** Only over a link already open to `to.key` (whatever its address), never a new connection (rpc/relay.ts). */
  linkOnly?: boolean;
}

/** What a handler learns about the caller: authenticated by the transport (its key was proven in the handshake). */
export interface Caller {
  /** Raw Ed25519 public key the caller proved possession of. */
  key: Uint8Array;
  /** The caller's own claimed NodeRef if it sent one (id binding is checked by the layer above). */
  ref?: NodeRef;
  /** Transport address the request came from. */
  addr: string;
}

export type RequestHandler = (method: string, payload: Payload, caller: Caller) => Promise<Payload> | Payload;

export interface RpcStats {
  requestsSent: number;
  requestsReceived: number;
  responsesOk: number;
  timeouts: number;
  /** Frames/messages from the network that could not be decoded or broke a limit: dropped and counted. */
  malformedDropped: number;
  refused: number;
}

export interface RpcEndpoint {
  readonly self: NodeRef;
  /**
   * Send a request and wait for its response. Rejects with an OverlayError:
   * RPC_TIMEOUT, RPC_UNREACHABLE, RPC_PEER_KEY_MISMATCH, RPC_REFUSED (the
   * handler threw; its message travels back), RPC_TOO_MANY_IN_FLIGHT.
   */
  request(to: NodeRef, method: string, payload: Payload, opts?: RequestOptions): Promise<Payload>;
  /** Install the handler for incoming requests (one per endpoint). */
  onRequest(handler: RequestHandler): void;
  readonly stats: RpcStats;
  close(): Promise<void>;
  /**
   * Optional (real sockets only): whether a fresh connection to `to.addr` reaches a node proving `to.key`, outside
   * any open link (a dial-back). Never rejects.
   */
  probe?(to: NodeRef, timeoutMs?: number): Promise<boolean>;
  /**
   * Optional (connection-based transports): the peers whose links should be open before they are needed (a
   * routing table). Kept open when idle, dialed in the background when missing; replaces the previous set.
   */
  keepLinks?(refs: readonly NodeRef[]): void;
}

export function emptyStats(): RpcStats {
  return { requestsSent: 0, requestsReceived: 0, responsesOk: 0, timeouts: 0, malformedDropped: 0, refused: 0 };
}
