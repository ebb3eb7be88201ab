/**
 * What the ops listener asks of a running daemon: its state (state.ts), its
 * readiness, and for a bootstrap the administration port. One target per
 * role, built from the daemon's public surface.
 *
 * Readiness (GET /readyz):
 * - adapter: admitted, on the ring (not its own successor), its restored users
 *   registered again, and the bootstrap that admitted it answering a ping
 *   now (checked at most every READY_CACHE_MS);
 * - bootstrap: its place on the ring taken and the server answering;
 * - WhanauSIP node or gateway: its first SETUP done (before it, every lookup
 *   fails: the tables are empty).
 */
import { METHOD } from '../dht/chord/messages.ts';
import { bootstrapRef } from '../secp2psip/adapter-node.ts';
import type { RunningAdapter, RunningBootstrap } from '../secp2psip/daemon.ts';
import { type DaemonState, type Readiness, recentCalls, ringState, type UserState } from './state.ts';

export interface AdminUser {
  name: string;
  registeredAt: number;
  updatedAt: number;
  certified: boolean;
}

/** Bootstrap administration (bearer token required at the HTTP edge). */
export interface AdminPort {
  users(): AdminUser[];
  /** Forget the name (its user lost the key); false when it was not bound. */
  release(name: string): boolean;
}

export interface OpsTarget {
  state(ready: Readiness): DaemonState;
  ready(): Promise<Readiness>;
  admin?: AdminPort;
}

/** How long a readiness answer that needed a network probe is reused (ms). */
export const READY_CACHE_MS = 2000;
const PING_TIMEOUT_MS = 1500;

/** Reuse one probe for READY_CACHE_MS, and share it among concurrent callers. */
function cached(probe: () => Promise<Readiness>): () => Promise<Readiness> {
  let last: { at: number; p: Promise<Readiness> } | undefined;
  return () => {
    const now = performance.now();
    if (!last || now - last.at > READY_CACHE_MS) last = { at: now, p: probe() };
    return last.p;
  };
}

function usersOf(a: RunningAdapter): UserState[] {
  return [...a.node.users.keys()].sort().map((name) => ({
    name,
    contacts: a.adapter.node.phones.contactsOf(name),
    adapter: a.sipAddr,
  }));
}

export function adapterTarget(a: RunningAdapter): OpsTarget {
  const ring = a.node.ring;
  const ready = cached(async () => {
    if (!a.node.ready) return { ok: false, reason: 'registering the users of restored phone bindings again' };
    if (ring.successor.id === ring.id) return { ok: false, reason: 'not on the ring: no successor but itself' };
    try {
      await a.node.endpoint.request(bootstrapRef(a.bootstrap), METHOD.PING, {}, { timeoutMs: PING_TIMEOUT_MS });
    } catch (e) {
      return { ok: false, reason: `bootstrap ${a.bootstrap.addr} unreachable: ${(e as Error).message}` };
    }
    return { ok: true, reason: `on the ring, bootstrap ${a.bootstrap.addr} reachable` };
  });
  return {
    ready,
    state: (r) => ({
      role: 'adapter',
      id: ring.id,
      addr: ring.self.addr,
      sip: a.sipAddr,
      at: Date.now(),
      ready: r,
      ring: ringState([ring], a.node.bootstrapKeys),
      users: usersOf(a),
      calls: recentCalls([{ adapter: a.sipAddr, calls: a.adapter.calls }]),
    }),
  };
}

/** Users a bootstrap's state lists (the registry may hold many more; the admin API lists them all). */
export const STATE_USERS = 200;
/** How long the bootstrap's listed users are reused: the dashboard asks every second, the registry is on disk. */
const USERS_CACHE_MS = 5000;

export function bootstrapTarget(b: RunningBootstrap): OpsTarget {
  const s = b.server;
  let listed: { at: number; users: UserState[] } | undefined;
  const users = (): UserState[] => {
    const now = performance.now();
    if (!listed || now - listed.at > USERS_CACHE_MS)
      listed = {
        at: now,
        users: s.registry
          .all()
          .slice(0, STATE_USERS)
          .map((u) => ({ name: u.name, contacts: [] })),
      };
    return listed.users;
  };
  return {
    ready: async () => ({ ok: true, reason: 'on the ring, serving' }),
    state: (r) => ({
      role: 'bootstrap',
      id: s.ring.id,
      addr: b.info.addr,
      at: Date.now(),
      ready: r,
      ring: ringState(
        [s.ring],
        s.bootstraps.map((x) => x.key),
      ),
      users: users(),
      usersTotal: s.registry.count(),
    }),
    admin: {
      users: () =>
        s.registry.all().map((u) => ({
          name: u.name,
          registeredAt: u.registeredAt,
          updatedAt: u.updatedAt,
          certified: u.certFingerprint !== undefined,
        })),
      release: (name) => s.registry.release(name),
    },
  };
}
