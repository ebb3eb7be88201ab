/**
 * State metrics, read from the running daemon's public state at each scrape
 * (nothing is counted twice: the totals the layers already keep in their
 * `stats` are exposed as they are). `get` returns undefined while the daemon
 * is still starting; every reading is then 0.
 */
import type { ChordNode } from '../dht/chord/chord-node.ts';
import type { TlsRpcEndpoint } from '../rpc/tls-endpoint.ts';
import type { Adapter } from '../secp2psip/adapter.ts';
import type { BootstrapServer } from '../secp2psip/bootstrap-server.ts';
import type { SipElement } from '../sip/element.ts';
import type { WhanauDaemon } from '../whanausip/whanau-daemon.ts';
import type { RunningAdapter, RunningBootstrap } from '../secp2psip/daemon.ts';
import type { RunningWhanauSip } from '../whanausip/daemon.ts';
import type { PromMetrics } from './prom-metrics.ts';
import type { RunningRegistrar } from './registrar-target.ts';

export interface RingParts {
  ring?: ChordNode;
  endpoint?: TlsRpcEndpoint;
  element?: SipElement;
  adapter?: Adapter;
  server?: BootstrapServer;
}

/** Distinct ring members this node knows: itself, predecessor, successors, fingers. */
export function knownMembers(ring: ChordNode): number {
  const ids = new Set<string>([ring.id]);
  for (const r of ring.succs.entries()) ids.add(r.id);
  for (const r of ring.fingers.distinct()) ids.add(r.id);
  if (ring.pred) ids.add(ring.pred.id);
  return ids.size;
}

export function ringGauges(m: PromMetrics, get: () => RingParts | undefined): void {
  const ring = () => get()?.ring;
  m.gauge('chord_ring_members_known', 'distinct ring members this node knows (itself included)', () => {
    const r = ring();
    return r ? knownMembers(r) : 0;
  });
  m.gauge('chord_successors', 'entries in the successor list', () => ring()?.succs.entries().length ?? 0);
  m.gauge('chord_successor_list_size', 'length the successor list should have (replicas r)', () => ring()?.r ?? 0);
  m.gauge('chord_successor_alone', '1 when this node is its own successor (cut off, or the only member)', () => {
    const r = ring();
    return r && r.successor.id === r.id ? 1 : 0;
  });
  m.gauge('chord_predecessor_known', '1 when this node has a predecessor', () => (ring()?.pred ? 1 : 0));
  m.gauge('chord_records_held', 'records this node holds (its own range and replicas)', () => ring()?.store.size ?? 0);
  m.counterOf('chord_records_rehomed_total', 'records sent to their new owners after a ring change', () => {
    return ring()?.counters.rehomed ?? 0;
  });
  m.counterOf(
    'chord_neighbours_removed_total',
    'neighbours removed after they failed',
    () => ring()?.counters.removed ?? 0,
  );
  m.counterOf('chord_lookups_total', 'Chord lookups started', () => ring()?.counters.lookups ?? 0);
  const tls = () => get()?.endpoint;
  m.gauge('tls_links_open', 'TLS ring links open', () => tls()?.connectionCount ?? 0);
  m.counterOf(
    'tls_handshakes_total',
    'TLS handshakes of ring links, by direction and result',
    () => {
      const s = tls()?.stats;
      if (!s) return [];
      return [
        [{ direction: 'out', result: 'ok' }, s.connectionsDialed],
        [{ direction: 'in', result: 'ok' }, s.connectionsAccepted],
        [{ direction: 'in', result: 'failed' }, s.handshakeFailures],
        [{ direction: 'in', result: 'refused' }, s.connectionsRefused],
      ];
    },
    ['direction', 'result'],
  );
  const relay = () => tls()?.relay?.stats;
  m.gauge('relay_clients', 'nodes behind NATs this node relays for', () => relay()?.clients ?? 0);
  m.counterOf(
    'relay_circuits_total',
    'relay circuits: opened or refused here as a relay, dialled or accepted here as an end, or replaced by a direct connection (TCP simultaneous open) made or failed',
    () => {
      const s = relay();
      if (!s) return [];
      return [
        [{ role: 'relay', result: 'opened' }, s.circuitsOpened],
        [{ role: 'relay', result: 'refused' }, s.circuitsRefused],
        [{ role: 'end', result: 'dialled' }, s.circuitsDialled],
        [{ role: 'end', result: 'accepted' }, s.circuitsAccepted],
        [{ role: 'end', result: 'direct' }, s.punchedDirect],
        [{ role: 'end', result: 'direct_failed' }, s.punchFailed],
      ];
    },
    ['role', 'result'],
  );
  m.counterOf('relay_bytes_total', 'bytes relayed for others (TLS ciphertext)', () => relay()?.bytesRelayed ?? 0);
  m.counterOf(
    'relay_messages_total',
    'messages relayed for others, and refused over a circuit rate',
    () => {
      const s = relay();
      if (!s) return [];
      return [
        [{ result: 'relayed' }, s.messagesRelayed],
        [{ result: 'refused' }, s.messagesRefused],
      ];
    },
    ['result'],
  );
  m.gauge(
    'sip_transactions_in_flight',
    'SIP transactions not yet terminated, by side',
    () => {
      const l = get()?.element?.layer;
      return l
        ? [
            [{ side: 'server' }, l.activeServer],
            [{ side: 'client' }, l.activeClient],
          ]
        : [];
    },
    ['side'],
  );
}

export function adapterGauges(m: PromMetrics, get: () => RingParts | undefined): void {
  const a = () => get()?.adapter;
  m.counterOf(
    'secp2psip_registrations_total',
    'users registered with the bootstrap by this adapter',
    () => a()?.node.stats.registrations ?? 0,
  );
  m.counterOf('secp2psip_phone_registers_total', 'phone REGISTER requests handled', () => a()?.stats.registers ?? 0);
  m.gauge('secp2psip_users', 'users registered at this adapter', () => a()?.node.users.size ?? 0);
  m.gauge('secp2psip_phone_bindings', 'phone contact bindings held by the registrar', () => a()?.registrar.size ?? 0);
  m.counterOf(
    'secp2psip_calls_total',
    'phone INVITEs by how they ended at this adapter',
    () => {
      const s = a()?.stats;
      return s
        ? [
            [{ result: 'redirected' }, s.redirects],
            [{ result: 'refused' }, s.refused],
          ]
        : [];
    },
    ['result'],
  );
  m.counterOf(
    'secp2psip_invites_answered_total',
    'SECP2PSIP INVITEs of other adapters answered',
    () => a()?.node.stats.invitesAnswered ?? 0,
  );
  m.counterOf(
    'secp2psip_replay_refusals_total',
    'signed messages refused as replayed or stale',
    () => {
      const s = a()?.node.caller.replay.stats;
      return s
        ? [
            [{ reason: 'replayed' }, s.replayed],
            [{ reason: 'stale' }, s.stale],
          ]
        : [];
    },
    ['reason'],
  );
}

export function bootstrapGauges(m: PromMetrics, get: () => RingParts | undefined): void {
  const s = () => get()?.server;
  m.gauge('secp2psip_bootstrap_users', 'names bound in the registry', () => s()?.registry.count() ?? 0);
  m.counterOf('secp2psip_bootstrap_admitted_total', 'adapters admitted', () => s()?.stats.admitted ?? 0);
  m.counterOf('secp2psip_registrations_total', 'user registrations accepted', () => s()?.stats.registered ?? 0);
  m.counterOf('secp2psip_bootstrap_refused_total', 'requests refused', () => s()?.stats.refused ?? 0);
  m.counterOf(
    'secp2psip_bootstrap_names_refused_total',
    'new names refused by a limit',
    () => s()?.stats.namesRefused ?? 0,
  );
}

export function whanauGauges(m: PromMetrics, get: () => WhanauDaemon | undefined): void {
  m.gauge('whanau_setups_done', 'SETUPs finished', () => get()?.stats.setupsDone ?? 0);
  m.counterOf('whanau_setups_failed_total', 'SETUPs that failed', () => get()?.stats.setupsFailed ?? 0);
  m.gauge('whanau_peers_active', 'social peers answering', () => get()?.node.activePeers().length ?? 0);
  m.gauge(
    'whanau_table_fill',
    'entries in the tables of the last SETUP, by table',
    () => {
      const t = get() ? whanauTables(get() as WhanauDaemon) : undefined;
      return t ? Object.entries(t).map(([table, v]) => [{ table }, v]) : [];
    },
    ['table'],
  );
  m.gauge('whanau_records_held', 'records this node publishes or holds', () => get()?.node.records.size ?? 0);
}

/** Entry counts of the tables the last SETUP built (db, ids, fingers, successors), summed over layers. */
export function whanauTables(d: WhanauDaemon): Record<string, number> | undefined {
  const s = d.lastSetup?.summary;
  if (!s) return undefined;
  const sum = (v: unknown) =>
    Array.isArray(v) ? v.reduce((a: number, x) => a + (typeof x === 'number' ? x : 0), 0) : 0;
  return { db: typeof s.db === 'number' ? s.db : 0, fingers: sum(s.fingers), successors: sum(s.successors) };
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
