/**
 * A bootstrap and the adapters that join it, in this process on real
 * loopback sockets (TLS ring RPC, SIP over UDP and TCP), each with its data
 * directory under one temporary directory; closed together, newest first,
 * and the directory removed. procs.ts starts the same pair as processes.
 *
 *   const pair = await DaemonPair.start('secp2psip-x-', { stabilizeMs: 500 });
 *   const A = await pair.adapter('a');             // <dir>/a, open registration
 *   after(() => pair?.close());
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AdapterDaemonOptions,
  type BootstrapDaemonOptions,
  type RunningAdapter,
  type RunningBootstrap,
  startAdapterDaemon,
  startBootstrapDaemon,
} from '../../src/secp2psip/daemon.ts';

export interface DaemonPairOptions {
  /** The ring upkeep period of the bootstrap and of every adapter (default: the daemons' own). */
  stabilizeMs?: number;
  /** More bootstrap options (k and n default to 3 and 5). */
  bootstrap?: Partial<BootstrapDaemonOptions>;
}

export class DaemonPair {
  private readonly closers: Array<() => unknown> = [];

  private constructor(
    /** The temporary directory: the bootstrap's data in `boot`, each adapter's under its name. */
    readonly dir: string,
    readonly boot: RunningBootstrap,
    private readonly stabilizeMs: number | undefined,
  ) {}

  /** Start the bootstrap on 127.0.0.1 (a free port) with its data in `<new temporary directory>/boot`. */
  static async start(prefix: string, o: DaemonPairOptions = {}): Promise<DaemonPair> {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    const stabilize = o.stabilizeMs === undefined ? {} : { stabilizeMs: o.stabilizeMs };
    let boot: RunningBootstrap;
    try {
      boot = await startBootstrapDaemon({
        host: '127.0.0.1',
        port: 0,
        dataDir: join(dir, 'boot'),
        k: 3,
        n: 5,
        ...stabilize,
        ...o.bootstrap,
      });
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    const pair = new DaemonPair(dir, boot, o.stabilizeMs);
    pair.onClose(() => boot.close());
    return pair;
  }

  /**
   * An adapter joining the bootstrap, SIP on 127.0.0.1 (a free port), open registration, its data in `<dir>/<name>`
   * (the same name again restarts it on that data); `extra` overrides any of these.
   */
  async adapter(name: string, extra: Partial<AdapterDaemonOptions> = {}): Promise<RunningAdapter> {
    const a = await startAdapterDaemon({
      openRegistration: true,
      sipHost: '127.0.0.1',
      sipPort: 0,
      bootstrap: this.boot.info,
      dataDir: join(this.dir, name),
      ...(this.stabilizeMs === undefined ? {} : { stabilizeMs: this.stabilizeMs }),
      ...extra,
    });
    this.onClose(() => a.close());
    return a;
  }

  /** Run `close` with the daemons, before those started earlier. */
  onClose(close: () => unknown): void {
    this.closers.push(close);
  }

  /** Close everything (errors ignored: a daemon a test stopped already), newest first; remove the directory. */
  async close(): Promise<void> {
    for (const c of this.closers.splice(0).reverse())
      try {
        await c();
      } catch {}
    rmSync(this.dir, { recursive: true, force: true });
  }
}
