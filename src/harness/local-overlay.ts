/**
 * A whole SecP2PSIP overlay in one process on loopback: one bootstrap, N
 * adapters (real TLS ring, real UDP/TCP SIP), one built-in phone per adapter
 * registered as its user. The demo command and the benchmark drive it; the
 * phones are the small user agent of sip/ (auto-answer), the timed calls are
 * probes (INVITE to final answer, seed 000 section VI).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SipElement } from '../sip/element.ts';
import { TransportStack } from '../sip/transport-stack.ts';
import type { Peer } from '../sip/transport.ts';
import { UserAgent } from '../sip/user-agent.ts';
import { SystemClock } from '../util/clock.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { percentile } from '../util/stats.ts';
import type { FlowEvent, SecurityMode } from '../secp2psip/call-common.ts';
import { type ProbeResult, probeInvite } from './call-probe.ts';
import type { SecureSipConfig } from '../sip/secure-transports.ts';
import {
  type AdapterDaemonOptions,
  type RunningAdapter,
  type RunningBootstrap,
  startAdapterDaemon,
  startBootstrapDaemon,
} from '../secp2psip/daemon.ts';
import type { RebuildMode } from '../secp2psip/key-lookup.ts';
import type { CallRecord } from '../secp2psip/call-record.ts';
import type { Metrics } from '../util/metrics.ts';

export const DEMO_NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy'];

export function demoUserName(i: number): string {
  return i < DEMO_NAMES.length ? DEMO_NAMES[i] : `user${i + 1}`;
}

export interface LocalOverlayOptions {
  adapters: number;
  dataDir: string;
  k?: number;
  n?: number;
  mode?: SecurityMode;
  rebuild?: RebuildMode;
  host?: string;
  /** SIP port of adapter i is basePort + i (default: any free port). */
  basePort?: number;
  logger?: Logger;
  onEvent?: (adapter: number, e: FlowEvent) => void;
  /** Called after each adapter is up (progress). */
  onAdapter?: (i: number) => void;
  /** Where every daemon reports SIP traffic and ring events (default: not kept). */
  metrics?: Metrics;
  /** Told about each call an adapter placed (i: the adapter's index). */
  onCall?: (i: number, call: CallRecord) => void;
  /** SIP over TLS and WebSocket on every adapter, and what their WebSocket port serves (the browser phone). */
  secure?: SecureSipConfig;
  onHttp?: AdapterDaemonOptions['onHttp'];
}

export interface LocalUser {
  name: string;
  adapter: RunningAdapter;
  phone: UserAgent;
}

export interface RegistrationTimes {
  ms: number[];
  failed: number;
}

export interface CallSample extends ProbeResult {
  caller: string;
  callee: string;
}

export class LocalOverlay {
  readonly users: LocalUser[] = [];
  private readonly closers: Array<() => Promise<void>> = [];

  private constructor(
    readonly boot: RunningBootstrap,
    readonly adapters: RunningAdapter[],
    readonly opts: LocalOverlayOptions,
  ) {}

  /** Start the bootstrap and the adapters, one after another (each joins the ring through the bootstrap). */
  static async start(o: LocalOverlayOptions): Promise<LocalOverlay> {
    const host = o.host ?? '127.0.0.1';
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    const log = o.logger ?? silentLogger;
    const boot = await startBootstrapDaemon({
      host,
      port: 0,
      dataDir: join(o.dataDir, 'bootstrap'),
      k: o.k ?? 3,
      n: o.n ?? 5,
      logger: log,
      metrics: o.metrics,
    });
    const overlay = new LocalOverlay(boot, [], o);
    overlay.closers.push(() => boot.close());
    try {
      for (let i = 0; i < o.adapters; i++) {
        const a = await startAdapterDaemon({
          // The built-in phones register without a password: a loopback demo, said so in its output.
          openRegistration: true,
          sipHost: host,
          sipPort: o.basePort ? o.basePort + i : 0,
          bootstrap: boot.info,
          dataDir: join(o.dataDir, `adapter-${i + 1}`),
          mode: o.mode,
          rebuild: o.rebuild,
          logger: log,
          onEvent: o.onEvent ? (e) => o.onEvent?.(i, e) : undefined,
          metrics: o.metrics,
          onCall: o.onCall ? (c) => o.onCall?.(i, c) : undefined,
          secure: o.secure,
          onHttp: o.onHttp,
        });
        overlay.adapters.push(a);
        overlay.closers.push(() => a.close());
        o.onAdapter?.(i);
      }
      await overlay.settled();
    } catch (e) {
      await overlay.close();
      throw e;
    }
    return overlay;
  }

  /**
   * Wait until every member's successor and predecessor are the right ones
   * (a node that just joined has no predecessor until its neighbour's next
   * stabilize round, and lookups of keys it owns cannot be confirmed before).
   * All members live in this process, so the true ring is known here.
   */
  async settled(limitMs = 30_000): Promise<boolean> {
    const rings = [this.boot.server.ring, ...this.adapters.map((a) => a.node.ring)];
    const ids = rings.map((r) => r.id).sort();
    const end = performance.now() + limitMs;
    for (;;) {
      const good = rings.every((r) => {
        const i = ids.indexOf(r.id);
        const succ = ids[(i + 1) % ids.length];
        const pred = ids[(i - 1 + ids.length) % ids.length];
        return ids.length === 1 || (r.successor.id === succ && r.pred?.id === pred);
      });
      if (good) return true;
      if (performance.now() > end) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Create one phone per adapter, named after `demoUserName(i)`, and REGISTER it; times each REGISTER to 200. */
  async registerPhones(): Promise<RegistrationTimes> {
    const out: RegistrationTimes = { ms: [], failed: 0 };
    const host = this.opts.host ?? '127.0.0.1';
    for (let i = 0; i < this.adapters.length; i++) {
      const adapter = this.adapters[i];
      const transport = await TransportStack.listen({ host, port: 0 });
      const element = new SipElement({ transport, clock: new SystemClock() });
      this.closers.push(() => element.close());
      const phone = new UserAgent({ element }, { user: demoUserName(i), domain: host });
      const t0 = performance.now();
      const r = await phone.register(sipPeer(adapter)).catch(() => undefined);
      if (r?.status === 200) {
        out.ms.push(performance.now() - t0);
        this.users.push({ name: phone.user, adapter, phone });
      } else out.failed++;
    }
    return out;
  }

  /** Timed call setups: user i calls user i+1 (round robin), `concurrency` at a time. */
  async placeCalls(calls: number, concurrency = 1): Promise<CallSample[]> {
    const u = this.users;
    if (u.length < 2) return [];
    const samples: CallSample[] = [];
    let next = 0;
    const worker = async () => {
      for (let c = next++; c < calls; c = next++) {
        const from = u[c % u.length];
        const to = u[(c + 1) % u.length];
        const r = await probeInvite(from.phone.element, {
          caller: from.name,
          callee: to.name,
          adapter: sipPeer(from.adapter),
          domain: this.opts.host ?? '127.0.0.1',
        });
        samples.push({ ...r, caller: from.name, callee: to.name });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
    return samples;
  }

  async close(): Promise<void> {
    for (const c of this.closers.reverse()) await c().catch(() => {});
    this.closers.length = 0;
  }
}

export function sipPeer(a: RunningAdapter): Peer {
  const i = a.sipAddr.lastIndexOf(':');
  return {
    transport: 'UDP',
    address: a.sipAddr.slice(0, i).replace(/^\[|\]$/g, ''),
    port: Number(a.sipAddr.slice(i + 1)),
  };
}

export interface SetupSummary {
  calls: number;
  succeeded: number;
  failed: number;
  setupMsP50: number;
  setupMsP99: number;
  setupMsMean: number;
}

/** A call succeeded when the phone got the verified 302. */
export function summarizeCalls(samples: CallSample[]): SetupSummary {
  const ok = samples.filter((s) => s.status === 302);
  const ms = ok.map((s) => s.ms);
  const round = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null) as number;
  return {
    calls: samples.length,
    succeeded: ok.length,
    failed: samples.length - ok.length,
    setupMsP50: round(percentile(ms, 50)),
    setupMsP99: round(percentile(ms, 99)),
    setupMsMean: round(ms.reduce((a, b) => a + b, 0) / (ms.length || Number.NaN)),
  };
}
