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
import type { SipElement } from '../sip/element.ts';
import type { Registrar } from '../sip/registrar.ts';
import type { RunningWhanauSip } from '../whanausip/daemon.ts';
import { adapterGauges, bootstrapGauges, type RingParts, ringGauges, whanauGauges, whanauTables } from './probes.ts';
import type { PromMetrics } from './prom-metrics.ts';
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

export function bootstrapTarget(b: RunningBootstrap): OpsTarget {
  const s = b.server;
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
      users: s.registry.all().map((u) => ({ name: u.name, contacts: [] })),
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

export function whanauTarget(w: RunningWhanauSip, role: string): OpsTarget {
  const d = w.daemon;
  return {
    ready: async () =>
      d.stats.setupsDone > 0
        ? { ok: true, reason: 'SETUP done: tables built' }
        : { ok: false, reason: 'first SETUP not done yet (next at a UTC multiple of the setup period)' },
    state: (r) => ({
      role,
      id: d.hash,
      addr: d.self.addr,
      sip: w.sip.element.hostport,
      at: Date.now(),
      ready: r,
      whanau: {
        hash: d.hash,
        peers: d.node.peerList().map((p) => ({ hash: p.ref.id, addr: p.ref.addr, active: p.active })),
        tables: whanauTables(d) ?? {},
        setups: {
          done: d.stats.setupsDone,
          failed: d.stats.setupsFailed,
          last: d.lastSetup ? { at: d.lastSetup.at, ms: d.lastSetup.ms, ...d.lastSetup.summary } : undefined,
        },
      },
    }),
  };
}

/** A standalone registrar: ready once listening; its state is its bindings. */
export interface RunningRegistrar {
  element: SipElement;
  registrar: Registrar;
}

export function registrarTarget(r: RunningRegistrar): OpsTarget {
  return {
    ready: async () => ({ ok: true, reason: `listening on ${r.element.hostport}` }),
    state: (ready) => ({
      role: 'registrar',
      id: '',
      addr: r.element.hostport,
      sip: r.element.hostport,
      at: Date.now(),
      ready,
      users: r.registrar.addressesOfRecord().map((aor) => ({ name: aor, contacts: [] })),
    }),
  };
}

/** The parts of a running SecP2PSIP daemon the state metrics read. */
export function adapterParts(a: RunningAdapter): RingParts {
  return {
    ring: a.node.ring,
    endpoint: a.node.endpoint as RingParts['endpoint'],
    element: a.adapter.element,
    adapter: a.adapter,
  };
}

export function bootstrapParts(b: RunningBootstrap): RingParts {
  return { ring: b.server.ring, endpoint: b.server.endpoint as RingParts['endpoint'], server: b.server };
}

/** State metrics for a role; `get` gives the running daemon once it is up. */
export function roleGauges(m: PromMetrics, role: string, get: () => unknown): void {
  if (role === 'adapter' || role === 'bootstrap') {
    const parts = () => {
      const r = get();
      if (!r) return undefined;
      return role === 'adapter' ? adapterParts(r as RunningAdapter) : bootstrapParts(r as RunningBootstrap);
    };
    ringGauges(m, parts);
    if (role === 'adapter') adapterGauges(m, parts);
    else bootstrapGauges(m, parts);
  } else if (role === 'registrar') {
    const r = () => get() as RunningRegistrar | undefined;
    ringGauges(m, () => (r() ? { element: r()?.element } : undefined));
    m.gauge('sip_registrar_bindings', 'contact bindings held', () => r()?.registrar.size ?? 0);
  } else if (role === 'node' || role === 'gateway')
    whanauGauges(m, () => (get() as RunningWhanauSip | undefined)?.daemon);
}
