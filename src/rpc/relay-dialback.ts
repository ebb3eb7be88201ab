/**
 * Is this node reachable from outside? (a dial-back, as libp2p's AutoNAT
 * does). A ring member (an adapter) or a WhanauSIP node must be dialable by
 * the others: to store and fetch records, to stabilize or walk, to receive
 * calls. A node behind a NAT or firewall can dial out but not be dialled. So
 * before joining, the node asks one it trusts to dial back its advertised
 * address: an adapter the bootstrap that admitted it
 * (secp2psip/relay-client.ts), a WhanauSIP node one of its friends
 * (whanausip/whanau-daemon.ts). The node asked (here "the bootstrap"):
 *
 * - compares the advertised host with the address the request
 *   came from: a different host means a NAT (or a wrong --advertise) and is
 *   answered "unreachable" without dialling anything, so the service cannot be
 *   used to make the bootstrap connect to third parties;
 * - otherwise it opens a fresh TLS connection to that address, pinned to the
 *   caller's key (the link the adapter opened proves nothing), and answers
 *   whether it got through.
 *
 * Known callers only (the bootstrap serves nothing else before admission, a
 * WhanauSIP node only its friends), one check per caller key every 10 s.
 */
import { type Logger, silentLogger } from '../util/log.ts';
import { parseAddr } from './tls-dial.ts';
import type { Caller, NodeRef, Payload, RpcEndpoint } from './types.ts';

/** The method's name on the wire (kept from its first users, the adapters, so old bootstraps still answer). */
export const DIALBACK_METHOD = 'secp2psip.dialback';
const MIN_INTERVAL_MS = 10_000;
const DIAL_TIMEOUT_MS = 3000;

export type Reachability = 'reachable' | 'unreachable' | 'unknown';

export interface DialBackAnswer {
  result: Reachability;
  /** The address the request came from, as the bootstrap saw it. */
  seenFrom: string;
  reason?: string;
}

function hostOf(addr: string): string {
  const a = parseAddr(addr);
  return (a.ok ? a.value.host : addr).toLowerCase().replace(/^::ffff:/, '');
}

/** The bootstrap's side. */
export class DialBackService {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly endpoint: RpcEndpoint,
    private readonly now: () => number,
    private readonly log: Logger = silentLogger,
  ) {}

  async answer(payload: Payload, caller: Caller): Promise<DialBackAnswer> {
    const addr = (payload as { addr?: unknown } | null)?.addr;
    const seenFrom = caller.addr;
    if (typeof addr !== 'string' || addr.length > 300 || parseAddr(addr) === null)
      return { result: 'unknown', seenFrom, reason: 'malformed request' };
    const k = Buffer.from(caller.key).toString('hex');
    const t = this.now();
    if ((this.last.get(k) ?? Number.NEGATIVE_INFINITY) + MIN_INTERVAL_MS > t)
      return { result: 'unknown', seenFrom, reason: 'asked too often' };
    this.last.set(k, t);
    if (this.last.size > 10_000) this.last.delete(this.last.keys().next().value as string);
    if (hostOf(addr) !== hostOf(seenFrom))
      return { result: 'unreachable', seenFrom, reason: `advertised host differs from ${hostOf(seenFrom)}` };
    if (!this.endpoint.probe) return { result: 'unknown', seenFrom, reason: 'no dial-back on this transport' };
    const ok = await this.endpoint.probe({ id: '', addr, key: caller.key }, DIAL_TIMEOUT_MS);
    this.log.debug({ addr, ok }, 'dial-back');
    return ok ? { result: 'reachable', seenFrom } : { result: 'unreachable', seenFrom, reason: `no answer at ${addr}` };
  }
}

/** The asking node's side: ask `bootstrap` to dial back `self`. One that cannot tell (or does not know the method) gives 'unknown'. */
export async function checkReachable(endpoint: RpcEndpoint, bootstrap: NodeRef): Promise<DialBackAnswer> {
  try {
    const a = (await endpoint.request(
      bootstrap,
      DIALBACK_METHOD,
      { addr: endpoint.self.addr },
      { timeoutMs: DIAL_TIMEOUT_MS + 2000 },
    )) as Partial<DialBackAnswer> | null;
    const result = a?.result;
    if (result !== 'reachable' && result !== 'unreachable' && result !== 'unknown')
      return { result: 'unknown', seenFrom: '?', reason: 'malformed answer' };
    return {
      result,
      seenFrom: typeof a?.seenFrom === 'string' ? a.seenFrom : '?',
      reason: typeof a?.reason === 'string' ? a.reason.slice(0, 200) : undefined,
    };
  } catch (e) {
    return { result: 'unknown', seenFrom: '?', reason: (e as Error).message };
  }
}
