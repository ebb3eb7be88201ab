/**
 * An adapter behind a NAT without a port forward (docs/design.md "Adapters behind NAT"): the dial-back that tells,
 * and the relays it keeps, so that its ring address can name them (rpc/relay.ts).
 */
import type { RelayService } from '../rpc/relay.ts';
import { checkReachable } from '../rpc/relay-dialback.ts';
import { type KeptRelays, keepRelays, RELAY_RENEW_MS } from '../rpc/relay-keeper.ts';
import type { RpcEndpoint } from '../rpc/types.ts';
import { bytesEqual } from '../util/bytes.ts';
import type { Clock } from '../util/clock.ts';
import { OverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { AdmittedMsg, BootstrapInfo } from './messages.ts';

/** Dial-back (rpc/relay-dialback.ts): whether the bootstrap reaches our ring address (true when it cannot tell). */
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

/**
 * Behind a NAT: ask public ring members (the admission's, the bootstrap that admitted us first) to relay for us,
 * keep up to CLIENT_RELAYS of them, and make our ring address name them (rpc/relay-keeper.ts), so that what others
 * learn of us (the location records of our users, our hello) says how to reach us. A relay that stops is replaced
 * by a member the ring knows (`members`, set once joined), and `onChange` registers our users again. None
 * agreeing: a one-line refusal naming what to do.
 */
export async function relayThrough(
  endpoint: RpcEndpoint,
  admitted: AdmittedMsg,
  via: BootstrapInfo,
  clock: Clock,
  log: Logger,
  renewMs = RELAY_RENEW_MS,
): Promise<KeptRelays> {
  const relay = (endpoint as { relay?: RelayService }).relay;
  const candidates = [...admitted.ring].sort(
    (x, y) => Number(bytesEqual(y.key, via.key)) - Number(bytesEqual(x.key, via.key)),
  );
  const kept = relay
    ? await keepRelays({ endpoint, relay, candidates, want: CLIENT_RELAYS, clock, log, renewMs })
    : null;
  if (!kept) {
    await endpoint.close();
    throw new OverlayError(
      'BAD_CONFIG',
      `the ring address ${endpoint.self.addr} cannot be dialled from the bootstrap at ${via.addr} and no ring member agreed to relay for this adapter: forward a TCP port to this host and pass --advertise-rpc <public address>:<port>`,
    );
  }
  return kept;
}
