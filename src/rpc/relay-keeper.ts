/**
 * The relays a node behind a NAT keeps (docs/design.md "Adapters behind NAT", "WhanauSIP nodes behind a NAT"):
 * shared by the SecP2PSIP ring client (secp2psip/relay-client.ts, relays are ring members) and the WhanauSIP node
 * (whanausip/whanau-daemon.ts, relays are its social peers). It asks candidates to relay until `want` agree, takes
 * the relay address naming them (so what others learn of the node says how to reach it), renews each every
 * `renewMs` (which keeps the links, and the NAT's mappings for them, alive), and gives the place of a relay that
 * missed RELAY_MISSES renewals in a row to another node that agrees, telling the owner the address changed.
 */
import type { Clock, Timer } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import { formatRelayAddr, isRelayAddr } from './relay-circuit.ts';
import type { NodeRef, RpcEndpoint } from './types.ts';

/** Renewals a relay may miss in a row before another node takes its place. */
export const RELAY_MISSES = 2;
/** How often a client renews its registration with each relay. */
export const RELAY_RENEW_MS = 20_000;

/** What of the relay service the keeper uses (rpc/relay.ts `RelayService`). */
export interface RelayRegistrar {
  serving: boolean;
  registerWith(relay: NodeRef): Promise<boolean>;
}

export interface KeepRelaysOptions {
  endpoint: RpcEndpoint & { closeLinks?: () => void };
  relay: RelayRegistrar;
  /** Asked in order at start, and again (after `members()`) when a relay must be replaced. */
  candidates: readonly NodeRef[];
  /** How many relays to keep. */
  want: number;
  clock: Clock;
  log: Logger;
  renewMs?: number;
}

export interface KeptRelays {
  /** The relays kept now (the relay address names them in this order). */
  readonly relays: readonly NodeRef[];
  stop(): void;
  /** Nodes to take a lost relay's place from, before the candidates (e.g. the ring's routing hints). */
  members: () => readonly NodeRef[];
  /** Told when a relay was replaced and our address changed (what names us, location records, must follow). */
  onChange: () => void;
}

const same = (a: NodeRef, b: NodeRef): boolean =>
  a.key.length === b.key.length && a.key.every((x, i) => x === b.key[i]);

/** Null when no candidate agreed (the caller says what to do, in its own words). */
export async function keepRelays(o: KeepRelaysOptions): Promise<KeptRelays | null> {
  const { endpoint, relay, clock, log } = o;
  const self = endpoint.self;
  const usable = (r: NodeRef) => !isRelayAddr(r.addr) && !same(r, self);
  const candidates = o.candidates.filter(usable);
  const chosen: NodeRef[] = [];
  relay.serving = false;
  for (const c of candidates) {
    if (chosen.length >= o.want) break;
    if (chosen.some((x) => same(x, c))) continue;
    if (await relay.registerWith(c)) chosen.push(c);
  }
  if (chosen.length === 0) return null;
  self.addr = formatRelayAddr(chosen);
  // The links opened so far said HELLO with our private address: open them again under the new one.
  endpoint.closeLinks?.();
  for (const c of chosen) await relay.registerWith(c);
  log.info({ relays: chosen.map((c) => c.addr), addr: self.addr }, 'reachable through relays');
  let timer: Timer | undefined;
  let stopped = false;
  const misses = new Map<NodeRef, number>();
  const out: KeptRelays = {
    relays: chosen,
    stop: () => {
      stopped = true;
      timer?.cancel();
    },
    members: () => [],
    onChange: () => {},
  };
  const replace = async (lost: NodeRef): Promise<boolean> => {
    for (const m of [...out.members(), ...candidates]) {
      if (!usable(m) || same(m, lost) || chosen.some((c) => same(c, m))) continue;
      if (!(await relay.registerWith(m))) continue;
      chosen[chosen.indexOf(lost)] = m;
      misses.delete(lost);
      log.info({ lost: lost.addr, relay: m.addr }, 'a relay stopped answering; another node relays instead');
      return true;
    }
    return false;
  };
  const renewAll = async () => {
    let changed = false;
    for (const c of [...chosen]) {
      if (stopped) return;
      if (await relay.registerWith(c)) {
        misses.delete(c);
        continue;
      }
      const n = (misses.get(c) ?? 0) + 1;
      misses.set(c, n);
      if (n >= RELAY_MISSES && (await replace(c))) changed = true;
    }
    if (changed && !stopped) {
      self.addr = formatRelayAddr(chosen);
      log.info({ addr: self.addr }, 'relay address changed');
      out.onChange();
    }
  };
  const renew = () => {
    if (stopped) return;
    timer = clock.setTimer(o.renewMs ?? RELAY_RENEW_MS, () => {
      renewAll()
        .catch((e) => log.warn({ err: (e as Error).message }, 'relay renewal failed'))
        .finally(renew);
    });
  };
  renew();
  return out;
}
