import type { WhanauTransport } from '../dht/whanau/node.ts';
import type { NodeRef, Payload, RequestOptions } from '../rpc/types.ts';

/**
 * A cap on one node's concurrent requests to walk ends and fingers. During
 * SETUP every walk end is a fresh TLS link to a random node; without a cap a
 * phase opens r links at once per node, which thousands of nodes sharing one
 * machine cannot afford in file descriptors or handshake CPU. Requests over
 * social links (random-walk steps) pass uncapped: a node serving walks for
 * its peers must never wait behind its own setup calls, which may be waiting
 * for those peers (seed 003 section 4.6), or the two would wait on each other.
 */
export class OutgoingLimiter implements WhanauTransport {
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    private readonly inner: WhanauTransport,
    private readonly max: number,
    private readonly uncapped: ReadonlySet<string>,
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  async request(to: NodeRef, method: string, payload: Payload, opts?: RequestOptions): Promise<Payload> {
    if (this.uncapped.has(method)) return this.inner.request(to, method, payload, opts);
    if (this.running >= this.max) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.running++;
    try {
      return await this.inner.request(to, method, payload, opts);
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }
}
