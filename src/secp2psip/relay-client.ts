/**
 * An adapter behind a NAT without a port forward (docs/design.md "Adapters behind NAT"): the dial-back that tells,
 * and the relays it keeps, so that its ring address can name them (rpc/relay.ts).
 */
import { formatRelayAddr, isRelayAddr, type RelayService } from '../rpc/relay.ts';
import type { NodeRef, RpcEndpoint } from '../rpc/types.ts';
import { bytesEqual } from '../util/bytes.ts';
import type { Clock, Timer } from '../util/clock.ts';
import { OverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { checkReachable } from './dial-back.ts';
import type { AdmittedMsg, BootstrapInfo } from './messages.ts';

/** Dial-back (dial-back.ts): whether the bootstrap reaches our ring address (true when it cannot tell). */
export async function reachable(
  endpoint: RpcEndpoint,
  admitted: AdmittedMsg,
  via: BootstrapInfo,
  log: Logger,
): Promise<boolean> {
  const ref = admitted.ring.find((r) => bytesEqual(r.key, via.key)) ?? { id: '', addr: via.addr, key: via.key };
  const a = await checkReachable(endpoint, ref);
  if (a.result === 'reachable') {
    log.info({ addr: endpoint.self.addr }, 'ring address reachable from the bootstrap (dial-back)');
    return true;
  }
  if (a.result === 'unknown') {
    log.warn({ addr: endpoint.self.addr, reason: a.reason }, 'reachability of the ring address not checked');
    return true;
  }
  log.info(
    { addr: endpoint.self.addr, seenFrom: a.seenFrom, reason: a.reason },
    'ring address not reachable from the bootstrap (dial-back): behind a NAT, joining as a client through relays',
  );
  return false;
}

/** Relays a client keeps (2 or 3, docs/design.md "Adapters behind NAT"). */
export const CLIENT_RELAYS = 3;
/** How often a client renews its registration with each relay (keeps the link, and so the NAT binding, alive). */
export const RELAY_RENEW_MS = 20_000;

export interface Relaying {
  stop(): void;
  /** Ring members to take a lost relay's place from (the ring's routing hints, once it has joined). */
  members: () => readonly NodeRef[];
  /** Told when a relay was replaced and our ring address changed (the users' location records must follow). */
  onChange: () => void;
}

/** Renewals a relay may miss in a row before another ring member takes its place. */
export const RELAY_MISSES = 2;

/**
 * Behind a NAT: ask public ring members (the admission's, the bootstrap that admitted us first) to relay for us,
 * keep up to CLIENT_RELAYS of them, and make our ring address name them (rpc/relay.ts), so that what others
 * learn of us (the location records of our users, our hello) says how to reach us. None agreeing: a one-line
 * refusal naming what to do.
 */
export async function relayThrough(
  endpoint: RpcEndpoint,
  admitted: AdmittedMsg,
  via: BootstrapInfo,
  clock: Clock,
  log: Logger,
  renewMs = RELAY_RENEW_MS,
): Promise<Relaying> {
  const relay = (endpoint as { relay?: RelayService }).relay;
  const candidates = [...admitted.ring]
    .filter((r) => !isRelayAddr(r.addr) && !bytesEqual(r.key, endpoint.self.key))
    .sort((x, y) => Number(bytesEqual(y.key, via.key)) - Number(bytesEqual(x.key, via.key)));
  const chosen: NodeRef[] = [];
  if (relay) {
    relay.serving = false;
    for (const c of candidates) {
      if (chosen.length >= CLIENT_RELAYS) break;
      if (await relay.registerWith(c)) chosen.push(c);
    }
  }
  if (!relay || chosen.length === 0) {
    await endpoint.close();
    throw new OverlayError(
      'BAD_CONFIG',
      `the ring address ${endpoint.self.addr} cannot be dialled from the bootstrap at ${via.addr} and no ring member agreed to relay for this adapter: forward a TCP port to this host and pass --advertise-rpc <public address>:<port>`,
    );
  }
  endpoint.self.addr = formatRelayAddr(chosen);
  // The links opened so far said HELLO with our private address: open them again under the new one.
  (endpoint as { closeLinks?: () => void }).closeLinks?.();
  for (const c of chosen) await relay.registerWith(c);
  log.info({ relays: chosen.map((c) => c.addr), addr: endpoint.self.addr }, 'reachable through relays');
  let timer: Timer | undefined;
  const misses = new Map<NodeRef, number>();
  const out: Relaying = { stop: () => timer?.cancel(), members: () => [], onChange: () => {} };
  /** A relay that missed RELAY_MISSES renewals in a row gives its place to a ring member that agrees to relay. */
  const replace = async (lost: NodeRef): Promise<boolean> => {
    const taken = (r: NodeRef) => chosen.some((c) => bytesEqual(c.key, r.key));
    for (const m of [...out.members(), ...candidates]) {
      if (isRelayAddr(m.addr) || taken(m) || bytesEqual(m.key, endpoint.self.key) || bytesEqual(m.key, lost.key))
        continue;
      if (!(await relay.registerWith(m))) continue;
      chosen[chosen.indexOf(lost)] = m;
      misses.delete(lost);
      log.info({ lost: lost.addr, relay: m.addr }, 'a relay stopped answering; another ring member relays instead');
      return true;
    }
    return false;
  };
  const renewAll = async () => {
    let changed = false;
    for (const c of [...chosen]) {
      if (await relay.registerWith(c)) {
        misses.delete(c);
        continue;
      }
      const n = (misses.get(c) ?? 0) + 1;
      misses.set(c, n);
      if (n >= RELAY_MISSES && (await replace(c))) changed = true;
    }
    if (changed) {
      endpoint.self.addr = formatRelayAddr(chosen);
      log.info({ addr: endpoint.self.addr }, 'ring address changed: registering our users again');
      out.onChange();
    }
  };
  const renew = () => {
    timer = clock.setTimer(renewMs, () => {
      renewAll()
        .catch((e) => log.warn({ err: (e as Error).message }, 'relay renewal failed'))
        .finally(renew);
    });
  };
  renew();
  return out;
}
