/**
 * A plain Chord ring on loopback: every node a ChordNode on its own TLS 1.3
 * RPC endpoint (mutual authentication, pinned Ed25519 keys, id = SHA-1 of
 * the key), in this process. For measurements of the DHT alone.
 */
import { generateKeyPairSync } from 'node:crypto';
import { ChordNode } from '../../src/dht/chord/chord-node.ts';
import { TlsRpcEndpoint } from '../../src/rpc/tls-endpoint.ts';
import { SystemClock } from '../../src/util/clock.ts';
import { CryptoRandom } from '../../src/util/random.ts';

export class TlsRing {
  readonly nodes: ChordNode[] = [];
  readonly endpoints: TlsRpcEndpoint[] = [];
  private readonly clock = new SystemClock();

  /** `maxStabilizeMs`: longest period of the adaptive tick (ChordInit; default: the fixed period). */
  constructor(
    private readonly stabilizeMs = 1000,
    private readonly maxStabilizeMs = stabilizeMs,
  ) {}

  async add(): Promise<ChordNode> {
    const endpoint = await TlsRpcEndpoint.listen({ keyPair: generateKeyPairSync('ed25519'), clock: this.clock });
    const node = ChordNode.create(
      { endpoint, clock: this.clock, random: new CryptoRandom() },
      { stabilizeMs: this.stabilizeMs, maxStabilizeMs: this.maxStabilizeMs, rpcTimeoutMs: 5000 },
    );
    const contact = this.nodes[0]?.self;
    let last: unknown;
    for (let attempt = 0; attempt < 8; attempt++) {
      try {
        await node.join(contact);
        this.endpoints.push(endpoint);
        this.nodes.push(node);
        return node;
      } catch (e) {
        last = e;
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
      }
    }
    node.stop();
    await endpoint.close();
    throw last;
  }

  async growTo(n: number, onAdded?: () => void): Promise<void> {
    while (this.nodes.length < n) {
      await this.add();
      onAdded?.();
    }
  }

  settle(rounds = 3): Promise<void> {
    return new Promise((r) => setTimeout(r, rounds * this.stabilizeMs));
  }

  async close(): Promise<void> {
    for (const n of this.nodes) n.stop();
    await Promise.all(this.endpoints.map((e) => e.close().catch(() => {})));
  }
}
