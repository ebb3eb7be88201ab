/**
 * How a SecP2PSIP daemon takes its place on the Chord ring, and leaves it:
 * join through members, take up a place the ring still lists after a crash,
 * found a new ring in an agreed order when several bootstraps start at once.
 * Every wait runs on the injected clock, so the TLS daemons and the in-memory
 * overlay run the same policy, and tests run it in simulated time.
 *
 * Founding order: when no member answers, the bootstraps of the set found in
 * the order of their keys. The first founds at once; the one of rank r first
 * waits r x `foundingStepMs` for a ring to join, asking its peer bootstraps
 * every `foundingPollMs`. Bootstraps started together so form one ring, and
 * with the first one down the next founds after one step.
 */
import type { ChordNode } from '../dht/chord/chord-node.ts';
import type { NodeRef, RpcEndpoint } from '../rpc/types.ts';
import type { Clock } from '../util/clock.ts';
import { bytesEqual } from '../util/bytes.ts';
import { isOverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { requestAdmission } from './adapter-node.ts';
import type { BootstrapInfo } from './messages.ts';

/** The parts of a Chord node that joining uses (ChordNode's public operations). */
export type RingMember = Pick<ChordNode, 'id' | 'join' | 'rejoin' | 'leave' | 'stop' | 'neighbors' | 'successor'> & {
  readonly store: { readonly size: number };
};

export interface RingJoinComponents {
  ring: RingMember;
  clock: Clock;
  logger?: Logger;
}

export const FOUNDING_STEP_MS = 5000;
export const FOUNDING_POLL_MS = 500;
/** How long a graceful leave may take before the node just stops. */
export const LEAVE_BOUND_MS = 3000;

/** Resolve after `ms` of the clock's time. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((r) => clock.setTimer(ms, r));
}

/** The rank of `self` in founding order: how many bootstraps of the set have a smaller key. */
export function foundingRank(peers: readonly BootstrapInfo[], self: Uint8Array): number {
  const hex = Buffer.from(self).toString('hex');
  return peers.filter((p) => Buffer.from(p.key).toString('hex') < hex).length;
}

/**
 * Join through any of the contacts; a ring still settling after other joins may need another try
 * (waits of 250 ms, 500 ms, ... between rounds). 'listed': the ring already holds a node with our id
 * (ChordNode.join refuses with BAD_CONFIG).
 */
export async function joinRing(
  c: RingJoinComponents,
  contacts: readonly NodeRef[],
  attempts = 8,
): Promise<'joined' | 'listed'> {
  const log = c.logger ?? silentLogger;
  let last: unknown;
  // A node key keeps its ring id: after a crash the ring may still list us (the dead incarnation), and a join
  // lookup of our own id then runs into it until the ring drops it. Seen in the contacts: take the place up.
  if (contacts.some((r) => r.id === c.ring.id)) return 'listed';
  for (let attempt = 0; attempt < attempts; attempt++) {
    for (const r of contacts) {
      try {
        await c.ring.join({ id: r.id, addr: r.addr, key: r.key, admission: r.admission });
        return 'joined';
      } catch (e) {
        if (isOverlayError(e, 'BAD_CONFIG')) return 'listed';
        last = e;
      }
    }
    log.debug({ attempt, err: (last as Error)?.message }, 'join failed; retrying');
    // Or a contact names us as its predecessor or successor: the same case, seen one step further.
    for (const r of contacts) {
      const nb = await c.ring.neighbors({ id: r.id, addr: r.addr, key: r.key, admission: r.admission }, false);
      if (nb && (nb.pred?.id === c.ring.id || nb.succs.some((x) => x.id === c.ring.id))) return 'listed';
    }
    if (attempt + 1 < attempts) await sleep(c.clock, 250 * (attempt + 1));
  }
  throw last ?? new Error('no ring member to join through');
}

/**
 * Ring members known to the other bootstraps of the set: a peer answers ADMIT
 * with its own admitted ref and its successors (the admission it issues us is
 * not used: a bootstrap's ring id comes from its own registry).
 */
export async function peerContacts(
  endpoint: RpcEndpoint,
  peers: readonly BootstrapInfo[],
  self: Uint8Array,
  log: Logger = silentLogger,
  quiet = false,
): Promise<NodeRef[]> {
  const out: NodeRef[] = [];
  for (const p of peers) {
    if (bytesEqual(p.key, self)) continue;
    try {
      const m = await requestAdmission(endpoint, p);
      for (const r of m.ring) out.push({ id: r.id, addr: r.addr, key: r.key, admission: r.admission });
    } catch (e) {
      if (!quiet) log.warn({ peer: p.addr, err: (e as Error).message }, 'peer bootstrap unreachable');
    }
  }
  return out;
}

export interface Founding {
  /** Time to wait for a ring to appear before founding one (rank x step; 0: found at once). */
  waitMs: number;
  /** Ask the peer bootstraps again for ring members. */
  refresh: () => Promise<NodeRef[]>;
  pollMs?: number;
}

export type BootstrapJoin = 'joined' | 'rejoined' | 'founded';

/**
 * A bootstrap keeps its ring id across restarts (its address is fixed, so entries for it stay right).
 * After a stop it left the ring and joins again. After a crash the ring may still list it, and a join
 * lookup cannot confirm a place the ring believes taken: then it takes up its place again (ChordNode.rejoin:
 * the members it knows in ring order after it, and the records of its range pulled from its successor), and
 * Chord's stabilize and notify correct the rest. Which case holds is asked of the members themselves (their
 * predecessor and successors). With no member answering, it waits its turn in founding order, then starts a
 * new ring.
 */
export async function joinAsBootstrap(
  c: RingJoinComponents,
  key: Uint8Array,
  contacts: readonly NodeRef[],
  founding: Founding,
): Promise<BootstrapJoin> {
  const { ring, clock } = c;
  const log = c.logger ?? silentLogger;
  const seen = new Map<string, NodeRef>();
  const learn = (r: NodeRef | null) => {
    if (r && !bytesEqual(r.key, key) && !seen.has(r.id)) seen.set(r.id, r);
  };
  const probe = contacts.filter((r) => !bytesEqual(r.key, key)).slice(0, 16);
  const replies = await Promise.all(probe.map((r) => ring.neighbors(r, false).catch(() => null)));
  const live = probe.filter((_, i) => replies[i] !== null);
  let listed = contacts.some((r) => r.id === ring.id);
  for (const nb of replies) {
    if (!nb) continue;
    if (nb.pred?.id === ring.id || nb.succs.some((s) => s.id === ring.id)) listed = true;
    learn(nb.pred);
    for (const s of nb.succs) learn(s);
  }
  for (const r of live) learn(r);
  const takeUpPlace = async (why: string): Promise<BootstrapJoin> => {
    const pulled = await ring.rejoin([...seen.values()]);
    log.info(
      { successor: ring.successor.addr, records: ring.store.size, pulled },
      `${why}; taking up its place among the members it knows`,
    );
    return 'rejoined';
  };
  if (listed && seen.size > 0) return takeUpPlace('the ring still lists this bootstrap');
  if (live.length > 0) {
    try {
      if ((await joinRing(c, live, 2)) === 'joined') return 'joined';
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'could not join through the live members');
    }
    return takeUpPlace('no join through the live members');
  }
  // No member answers: wait for a bootstrap earlier in founding order to start the ring, then join it.
  if (founding.waitMs > 0) {
    const until = clock.now() + founding.waitMs;
    log.info({ waitMs: founding.waitMs }, 'no ring member answers; waiting for a bootstrap earlier in founding order');
    while (clock.now() < until) {
      await sleep(clock, Math.min(founding.pollMs ?? FOUNDING_POLL_MS, until - clock.now()));
      const more = await founding.refresh();
      if (more.length > 0)
        return joinAsBootstrap(c, key, more, { ...founding, waitMs: Math.max(0, until - clock.now()) });
    }
  }
  // With no member to join through, this bootstrap starts a new ring (join(undefined) also starts maintenance).
  log.info('no ring member answers; starting a new ring');
  await ring.join(undefined);
  return 'founded';
}

/** Hand records and neighbours over before going (Chord leave), so the ring keeps no entry for us. */
export async function leaveRing(c: RingJoinComponents, boundMs = LEAVE_BOUND_MS): Promise<void> {
  const log = c.logger ?? silentLogger;
  let timer: { cancel(): void } | undefined;
  const bound = new Promise<void>((r) => {
    timer = c.clock.setTimer(boundMs, r);
  });
  await Promise.race([c.ring.leave(), bound]).catch((e) =>
    log.warn({ err: (e as Error).message }, 'could not leave the ring gracefully'),
  );
  timer?.cancel();
  c.ring.stop();
}
