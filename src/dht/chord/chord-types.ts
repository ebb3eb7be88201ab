/**
 * What a Chord node is built from and what its operations return, and the
 * default rule binding a node id to its key.
 */
import { nodeIdFromKey } from '../../identity/fingerprint.ts';
import type { NodeRef, RpcEndpoint } from '../../rpc/types.ts';
import { bytesEqual } from '../../util/bytes.ts';
import type { Clock } from '../../util/clock.ts';
import type { ErrorCode } from '../../util/errors.ts';
import type { Metrics } from '../../util/metrics.ts';
import type { Logger } from '../../util/log.ts';
import type { Random } from '../../util/random.ts';
import type { DhtRecord } from '../store/record.ts';
import type { RecordStoreInit } from '../store/record-store.ts';

export interface ChordComponents {
  endpoint: RpcEndpoint;
  clock: Clock;
  random: Random;
  logger?: Logger;
  /** Lookup hops and RPC round trips are reported here (default: not kept). */
  metrics?: Metrics;
}

/**
 * How far the tick period backs off at rest by default (see ChordInit.maxStabilizeMs). Every change a node
 * observes brings it back at once (pacing.ts), so the longer period delays only what no node observes: a
 * neighbour that went silent without anyone calling it is found at most one long period later.
 */
export const MAX_STABILIZE_FACTOR = 8;

/** The RPC timeout assumed when the endpoint's own applies (see Maintenance.checkPredecessor). */
export const DEFAULT_RPC_TIMEOUT_MS = 2000;

export interface ChordInit {
  /** r: successor list length, and copies kept of each record (default 3). */
  replicas?: number;
  /** Period of the batched maintenance tick: stabilize, check predecessor, fix a finger, re-replicate (default 1000 ms). */
  stabilizeMs?: number;
  /**
   * Longest period the tick backs off to while the neighbourhood stays
   * unchanged (adaptive stabilization, pacing.ts); a change or a failure
   * brings it back to `stabilizeMs` (default: MAX_STABILIZE_FACTOR times
   * `stabilizeMs`; equal to it for a fixed period).
   */
  maxStabilizeMs?: number;
  /** Spread of the tick period, as a fraction of it (default 0.25). */
  jitter?: number;
  /** Per-RPC timeout (default: the endpoint's). */
  rpcTimeoutMs?: number;
  maxHops?: number;
  /** Parallel queries after a hop times out (default 3). */
  alpha?: number;
  /** How often the node that put a record puts it again (default 10 minutes). */
  republishMs?: number;
  /**
   * Policy deciding whether a NodeRef's id is bound to its key. Default: the
   * id must be SHA-1 of the 32-byte public key. The SecP2PSIP bootstrap
   * instead checks the admission certificate that assigns the id.
   */
  verifyRef?: (ref: NodeRef) => boolean;
  store?: RecordStoreInit;
  /** Install the Chord handler on the endpoint (default true). Set false to dispatch `chord.*` yourself. */
  installHandler?: boolean;
  /** Nodes remembered beyond the routing table, for reads that go straight to a key's holders (default 256; 0: none). */
  viewSize?: number;
}

export type LookupOutcome =
  | { ok: true; owner: NodeRef; replicas: NodeRef[]; hops: number; queries: number }
  | { ok: false; error: 'DHT_LOOKUP_FAILED'; reason: string; hops: number; queries: number };

export type GetResult =
  | { ok: true; record: DhtRecord; value: Uint8Array | string; hops: number }
  | { ok: false; error: 'DHT_NOT_FOUND' | 'DHT_LOOKUP_FAILED'; reason: string; hops: number };

export type PutResult = { ok: true; replicas: number; hops: number } | { ok: false; error: ErrorCode; reason: string };

/** The default binding: a node's id is SHA-1 of its raw Ed25519 public key. */
export function idBoundToKey(ref: NodeRef): boolean {
  const k = ref.key;
  if (!(k instanceof Uint8Array) || k.length !== 32) return false;
  // A pure function of (id, key): one process-wide cache serves every node.
  const seen = boundById.get(ref.id);
  if (seen !== undefined && (seen === k || bytesEqual(seen, k))) return true;
  if (nodeIdFromKey(k) !== ref.id) return false;
  if (boundById.size >= 500_000) boundById.clear();
  boundById.set(ref.id, k);
  return true;
}
const boundById = new Map<string, Uint8Array>();
