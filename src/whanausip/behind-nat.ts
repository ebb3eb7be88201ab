/**
 * A WhanauSIP node behind a NAT (docs/design.md "WhanauSIP nodes behind a NAT"): the dial-back that tells, asked of
 * its friends (rpc/relay-dialback.ts, as an adapter asks its bootstrap), and the friends it keeps as relays
 * (rpc/relay-keeper.ts, as a ring client keeps ring members). Friends are the only nodes a WhanauSIP node trusts
 * by configuration (seed 003 section 3.1), so they are whom it asks and whom it serves.
 */
import { sha1Hex } from '../identity/fingerprint.ts';
import type { RelayService } from '../rpc/relay.ts';
import { checkReachable, DIALBACK_METHOD, DialBackService, type Reachability } from '../rpc/relay-dialback.ts';
import { type KeptRelays, keepRelays } from '../rpc/relay-keeper.ts';
import type { NodeRef, RequestHandler, RpcEndpoint } from '../rpc/types.ts';
import type { Clock } from '../util/clock.ts';
import { OverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';

/** Friends a node behind a NAT keeps as relays. */
export const PEER_RELAYS = 3;
/** Friends asked for a dial-back, one after another, until one can tell. */
const DIALBACK_ASKED = 3;

export { DIALBACK_METHOD };

/** Serve the dial-back to friends only (`isFriend` on the SHA-1 of the caller's proven key). */
export function friendDialBack(
  endpoint: RpcEndpoint,
  isFriend: (hash: string) => boolean,
  clock: Clock,
  log: Logger,
): RequestHandler {
  const service = new DialBackService(endpoint, () => clock.now(), log);
  return (_method, payload, caller) => {
    if (!isFriend(sha1Hex(caller.key))) throw new OverlayError('RPC_REFUSED', 'dial-back is for friends only');
    return service.answer(payload, caller);
  };
}

/**
 * Ask friends (those whose key we know) to dial our DHT address back, one after another, up to DIALBACK_ASKED:
 * the first that can tell decides. 'unknown' when none could (no friend up yet, none that knows us yet, one that
 * does not know the method): the node then goes on as a public one, says so, and asks again later.
 */
export async function reachableFromFriends(
  endpoint: RpcEndpoint,
  friends: readonly NodeRef[],
  log: Logger,
): Promise<Reachability> {
  for (const f of friends.slice(0, DIALBACK_ASKED)) {
    const a = await checkReachable(endpoint, f);
    if (a.result === 'unknown') {
      log.debug({ friend: f.addr, reason: a.reason }, 'dial-back: friend could not tell');
      continue;
    }
    if (a.result === 'reachable') {
      log.info({ addr: endpoint.self.addr, friend: f.addr }, 'DHT address reachable from a friend (dial-back)');
      return 'reachable';
    }
    log.info(
      { addr: endpoint.self.addr, friend: f.addr, seenFrom: a.seenFrom, reason: a.reason },
      'DHT address not reachable from a friend (dial-back): behind a NAT, friends relay for this node',
    );
    return 'unreachable';
  }
  log.warn(
    { addr: endpoint.self.addr },
    'reachability of the DHT address not checked: no friend could tell (asked again before the next SETUP)',
  );
  return 'unknown';
}

/**
 * Behind a NAT: ask friends to relay for us, keep up to PEER_RELAYS, take the relay address naming them; a friend
 * that stops relaying gives its place to another (`friends()` is asked again then, so friends learned since count).
 * `onChange` is told when the address changed (our record must name the new set). None agreeing: a one-line error.
 */
export async function relayThroughFriends(o: {
  endpoint: RpcEndpoint & { relay: RelayService; closeLinks(): void };
  friends: () => readonly NodeRef[];
  clock: Clock;
  log: Logger;
  renewMs?: number;
  onChange: () => void;
}): Promise<KeptRelays> {
  const kept = await keepRelays({
    endpoint: o.endpoint,
    relay: o.endpoint.relay,
    candidates: o.friends(),
    want: PEER_RELAYS,
    clock: o.clock,
    log: o.log,
    renewMs: o.renewMs,
  });
  if (!kept)
    throw new OverlayError(
      'BAD_CONFIG',
      'behind a NAT, and no --peer friend answered to relay for this node: start a friend first, or forward a TCP port to the DHT port and pass --advertise',
    );
  kept.members = o.friends;
  kept.onChange = o.onChange;
  return kept;
}
