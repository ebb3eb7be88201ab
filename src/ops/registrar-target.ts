/** A standalone registrar's ops target: ready once listening; its state is its bindings. */
import type { SipElement } from '../sip/element.ts';
import type { Registrar } from '../sip/registrar.ts';
import type { OpsTarget } from './targets.ts';

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
