/**
 * What the dashboard, `secp2psip status` and /readyz show of a daemon: one
 * plain JSON snapshot, built from the layers' public state on demand (no
 * bookkeeping between requests). A daemon sees the ring members it knows
 * (itself, its predecessor, successors and fingers) and its own records; the
 * demo, which holds every member in one process, sees the whole ring.
 */
import type { ChordNode } from '../dht/chord/chord-node.ts';
import type { NodeRef } from '../rpc/types.ts';
import type { CallRecord } from '../secp2psip/call-record.ts';
import { bytesEqual } from '../util/bytes.ts';

export interface Readiness {
  ok: boolean;
  /** Why not ready (or what it is doing when ready). */
  reason: string;
}

export interface RingMember {
  id: string;
  addr: string;
  bootstrap: boolean;
  /** This daemon (or, in the demo, any member held in this process). */
  local: boolean;
  /** Records it holds, when known (its own, or every member's in the demo). */
  records?: number;
  /** Its successor and predecessor ids, when known. */
  succ?: string;
  pred?: string;
  /** Its range of the ring: (pred, id]. */
  rangeFrom?: string;
}

export interface RingState {
  members: RingMember[];
  /** This daemon's successor list (ids), and how long it should be. */
  successors: string[];
  replicas: number;
}

export interface UserState {
  name: string;
  contacts: string[];
  /** Which adapter (SIP address) the user registered at. */
  adapter?: string;
}

export interface CallState extends CallRecord {
  /** The adapter the call was placed through (SIP address). */
  adapter?: string;
}

export interface WhanauState {
  hash: string;
  peers: Array<{ hash: string; addr: string; active: boolean }>;
  tables: Record<string, number>;
  setups: { done: number; failed: number; last?: Record<string, unknown> };
}

export interface DaemonState {
  role: string;
  id: string;
  addr: string;
  at: number;
  ready: Readiness;
  ring?: RingState;
  users?: UserState[];
  /** All users when `users` lists only the first ones (a bootstrap's registry). */
  usersTotal?: number;
  calls?: CallState[];
  whanau?: WhanauState;
  sip?: string;
}

/** Most recent calls a snapshot carries. */
export const RECENT_CALLS = 20;

/** What one ChordNode knows of the ring, merged over several nodes when a process holds more than one. */
export function ringState(nodes: readonly ChordNode[], bootstrapKeys: readonly Uint8Array[]): RingState {
  const members = new Map<string, RingMember>();
  const isBootstrap = (r: NodeRef) => bootstrapKeys.some((k) => bytesEqual(k, r.key));
  const add = (r: NodeRef): RingMember => {
    let m = members.get(r.id);
    if (!m) {
      m = { id: r.id, addr: r.addr, bootstrap: isBootstrap(r), local: false };
      members.set(r.id, m);
    }
    return m;
  };
  for (const n of nodes) {
    for (const r of n.succs.entries()) add(r);
    for (const r of n.fingers.distinct()) add(r);
    if (n.pred) add(n.pred);
  }
  // The members held here last: what they say of themselves wins over what others think of them.
  for (const n of nodes) {
    const m = add(n.self);
    m.local = true;
    m.records = n.store.size;
    m.succ = n.successor.id;
    m.pred = n.pred?.id;
  }
  const sorted = [...members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  sorted.forEach((m, i) => {
    m.rangeFrom = m.pred ?? sorted[(i - 1 + sorted.length) % sorted.length].id;
  });
  const first = nodes[0];
  return {
    members: sorted,
    successors: first ? first.succs.entries().map((r) => r.id) : [],
    replicas: first ? first.r : 0,
  };
}

/** The last calls of several adapters, newest first. */
export function recentCalls(lists: Array<{ adapter: string; calls: readonly CallRecord[] }>): CallState[] {
  const all: CallState[] = [];
  for (const l of lists) for (const c of l.calls.slice(-RECENT_CALLS)) all.push({ ...c, adapter: l.adapter });
  return all.sort((a, b) => b.at - a.at).slice(0, RECENT_CALLS);
}
