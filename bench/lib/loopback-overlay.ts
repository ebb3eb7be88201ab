/**
 * A SecP2PSIP overlay on loopback for measurements: one bootstrap server and
 * any number of adapters, each on its own TLS 1.3 RPC socket (and UDP+TCP SIP
 * socket), all in this process through the same daemon code the CLI runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecurityMode } from '../../src/secp2psip/call-common.ts';
import {
  type RunningAdapter,
  type RunningBootstrap,
  startAdapterDaemon,
  startBootstrapDaemon,
} from '../../src/secp2psip/daemon.ts';
import type { RebuildMode } from '../../src/secp2psip/key-lookup.ts';
import type { PhoneCredentials } from '../../src/sip/phone-credentials.ts';
import type { SecureSipConfig } from '../../src/sip/secure-transports.ts';

export interface AdapterOptions {
  mode?: SecurityMode;
  rebuild?: RebuildMode;
  /** Phones authenticate against these users (digest); open registration when absent. */
  phoneUsers?: PhoneCredentials;
  /** SIP over TLS and WebSocket for the phones, besides UDP and TCP. */
  secure?: SecureSipConfig;
}

export class LoopbackOverlay {
  readonly adapters: RunningAdapter[] = [];
  private constructor(
    readonly boot: RunningBootstrap,
    private readonly dir: string,
    private readonly stabilizeMs: number,
  ) {}

  static async start(o: { k: number; n: number; stabilizeMs?: number }): Promise<LoopbackOverlay> {
    const dir = mkdtempSync(join(tmpdir(), 'secp2psip-bench-'));
    // The product's default period: every ring member's maintenance runs in this one process.
    const stabilizeMs = o.stabilizeMs ?? 1000;
    const boot = await startBootstrapDaemon({
      host: '127.0.0.1',
      port: 0,
      dataDir: join(dir, 'bootstrap'),
      k: o.k,
      n: o.n,
      stabilizeMs,
    });
    return new LoopbackOverlay(boot, dir, stabilizeMs);
  }

  /** Ring members: the bootstrap plus every adapter. */
  get size(): number {
    return 1 + this.adapters.length;
  }

  async addAdapter(opts: AdapterOptions = {}): Promise<RunningAdapter> {
    const a = await startAdapterDaemon({
      openRegistration: opts.phoneUsers === undefined,
      phoneUsers: opts.phoneUsers,
      sipHost: '127.0.0.1',
      sipPort: 0,
      bootstrap: this.boot.info,
      mode: opts.mode,
      rebuild: opts.rebuild,
      secure: opts.secure,
      stabilizeMs: this.stabilizeMs,
      // The seed's measurement: every call looks the callee up through the ring and rebuilds its key,
      // so the adapter's reuse of recently verified users is off here.
      cacheMs: 0,
    });
    this.adapters.push(a);
    return a;
  }

  /** Add adapters until `count` have been added in total; progress after each. */
  async growTo(count: number, onAdded?: () => void): Promise<void> {
    while (this.adapters.length < count) {
      await this.addAdapter();
      onAdded?.();
    }
  }

  /** Let the ring run a few maintenance rounds (successors, fingers, replicas) after joins. */
  settle(rounds = 3): Promise<void> {
    return new Promise((r) => setTimeout(r, rounds * this.stabilizeMs));
  }

  async close(): Promise<void> {
    for (const a of this.adapters.reverse()) await a.close().catch(() => {});
    await this.boot.close().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** host and port of an adapter's SIP socket. */
export function sipDest(a: RunningAdapter): { host: string; port: number } {
  const i = a.sipAddr.lastIndexOf(':');
  return { host: a.sipAddr.slice(0, i), port: Number(a.sipAddr.slice(i + 1)) };
}
