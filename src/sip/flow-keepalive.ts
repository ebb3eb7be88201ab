/**
 * Keep-alives towards the flows of phones that only their flow reaches
 * (flow.ts `directlyReachable`), so that the NAT in front of them keeps its
 * binding between their registrations (RFC 5626 4.4; UDP NAT bindings often
 * last 30 s to 2 min, a phone may re-register only every hour). Phones that
 * send their own keep-alives are answered by the transport (CRLF pong on a
 * connection, STUN Binding response over UDP, stun.ts); this sends ours too,
 * since most phones without `outbound` configured send none.
 */
import type { Clock, Timer } from '../util/clock.ts';
import { directlyReachable } from './flow.ts';
import type { Registrar } from './registrar.ts';
import type { Peer } from './transport.ts';

/** Default period (ms): below the shortest common UDP NAT binding timeout (30 s). */
export const KEEPALIVE_MS = 20_000;

export class FlowKeepAlive {
  private timer: Timer | undefined;
  private stopped = false;
  readonly stats = { sent: 0 };

  constructor(
    private readonly c: { registrar: Registrar; send: (to: Peer) => void; clock: Clock },
    private readonly intervalMs = KEEPALIVE_MS,
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** One round: a keep-alive to each flow-only binding's flow (each flow once). */
  tick(): number {
    const seen = new Set<string>();
    for (const b of this.c.registrar.allBindings()) {
      if (!b.flow || directlyReachable(b.contact.uri, b.flow)) continue;
      const k = `${b.flow.transport}|${b.flow.address}|${b.flow.port}|${b.flow.connId ?? ''}`;
      if (seen.has(k)) continue;
      seen.add(k);
      this.c.send(b.flow);
      this.stats.sent++;
    }
    return seen.size;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.c.clock.setTimer(this.intervalMs, () => {
      this.tick();
      this.schedule();
    });
  }
}

/** Start keep-alives for `registrar` over `transport` when it can send them; returns how to stop them. */
export function startKeepAlives(
  registrar: Registrar,
  transport: { keepAlive?(to: Peer): void },
  clock: Clock,
  intervalMs = KEEPALIVE_MS,
): () => void {
  const send = transport.keepAlive?.bind(transport);
  if (!send) return () => {};
  const k = new FlowKeepAlive({ registrar, send, clock }, intervalMs);
  k.start();
  return () => k.stop();
}
