/** A WhanauSIP node's or gateway's ops target (see targets.ts for readiness). */
import type { RunningWhanauSip } from '../whanausip/daemon.ts';
import { whanauTables } from './probes.ts';
import type { OpsTarget } from './targets.ts';

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
