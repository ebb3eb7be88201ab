/**
 * The demo's view: every member of its overlay lives in this process, so the
 * dashboard shows the whole ring (each member's range, records and
 * successor), every user of every adapter and the calls of all adapters.
 */
import type { LocalOverlay } from '../harness/local-overlay.ts';
import { recentCalls, ringState } from './state.ts';
import type { OpsTarget } from './targets.ts';

export function overlayTarget(o: LocalOverlay): OpsTarget {
  const boot = o.boot.server;
  return {
    ready: async () => ({ ok: true, reason: `bootstrap and ${o.adapters.length} adapters on the ring` }),
    state: (ready) => ({
      role: 'demo',
      id: boot.ring.id,
      addr: o.boot.info.addr,
      at: Date.now(),
      ready,
      ring: ringState(
        [boot.ring, ...o.adapters.map((a) => a.node.ring)],
        boot.bootstraps.map((b) => b.key),
      ),
      users: o.adapters.flatMap((a) =>
        [...a.node.users.keys()].sort().map((name) => ({
          name,
          contacts: a.adapter.node.phones.contactsOf(name),
          adapter: a.sipAddr,
        })),
      ),
      calls: recentCalls(o.adapters.map((a) => ({ adapter: a.sipAddr, calls: a.adapter.calls }))),
    }),
  };
}
