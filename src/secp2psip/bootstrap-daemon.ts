/**
 * Start a bootstrap server on real sockets: TLS 1.3 RPC with pinned keys between ring members, its registry
 * (`registry.sqlite` under the data directory, or a PostgreSQL database shared by the bootstrap set with a
 * witness of its user count kept in the data directory, registry-pg-witness.ts) and its node key. What the
 * role does (admission, joining, founding order) is in roles.ts and ring-join.ts, shared with the in-memory
 * overlay; this file adds the sockets and the files. The adapter's daemon is daemon.ts, which re-exports
 * this one for the commands, tests and benchmarks that start both.
 */
import type { NodeRef } from '../rpc/types.ts';
import { TlsRpcEndpoint } from '../rpc/tls-endpoint.ts';
import { defaultVerifyRef } from '../rpc/verify-ref.ts';
import { advertisedHost, hostPort } from '../util/advertise.ts';
import { SystemClock } from '../util/clock.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import type { Metrics } from '../util/metrics.ts';
import { CryptoRandom } from '../util/random.ts';
import type { BootstrapServer, NewNameLimits } from './bootstrap-server.ts';
import { openBootstrapData } from './data-dir.ts';
import { keyPair } from './daemon-tls.ts';
import type { BootstrapInfo } from './messages.ts';
import { admittedRef } from './ring-records.ts';
import { PgRegistry } from './registry-pg.ts';
import { checkSharedWitness, writeSharedWitness } from './registry-pg-witness.ts';
import { type BootstrapRole, type BootstrapRoleInit, type RingSettings, startBootstrapRole } from './roles.ts';

export interface BootstrapDaemonOptions extends RingSettings {
  host: string;
  port: number;
  /** The ring address others dial (`--advertise`); the port defaults to the bound one. Required in effect when
   * `host` is a wildcard and the host has no routable address (util/advertise.ts). */
  advertise?: { host: string; port?: number };
  dataDir: string;
  k: number;
  n: number;
  caBundle?: (string | Uint8Array)[];
  /** Every bootstrap of the overlay (this one is added if missing). */
  peers?: BootstrapInfo[];
  /** A ring member to join through (another bootstrap); default: rejoin via known adapters, else a new ring. */
  join?: NodeRef;
  logger?: Logger;
  /** Start although the registry is empty or gone while it had users (every name becomes free). */
  acceptEmptyRegistry?: boolean;
  /** Limits on new names (default: none; the `bootstrap` command applies DEFAULT_NEW_NAME_LIMITS). */
  newNames?: NewNameLimits;
  /** Bind a new name only with an unused enrolment token. */
  requireInvite?: boolean;
  /** Where the ring reports its events (default: not kept; see src/ops). */
  metrics?: Metrics;
  /**
   * A PostgreSQL connection string: names are bound in that database, shared by every bootstrap of the
   * set (registry-pg.ts); default: `registry.sqlite` under the data directory.
   */
  registry?: string;
  /** Awaited after each step of a registration (tests crash there). */
  onStep?: BootstrapRoleInit['onStep'];
}

/** How often a bootstrap on a shared registry records the database's user count in its witness. */
const SHARED_WITNESS_MS = 60_000;

export interface RunningBootstrap {
  server: BootstrapServer;
  info: BootstrapInfo;
  close(): Promise<void>;
}

export async function startBootstrapDaemon(o: BootstrapDaemonOptions): Promise<RunningBootstrap> {
  const log = o.logger ?? silentLogger;
  const clock = new SystemClock();
  const random = new CryptoRandom();
  // Every data file is checked before a port is bound: a damaged one is a one-line fatal error.
  const { identity, registry, acceptedEmpty } = openBootstrapData(o.dataDir, o);
  let names: PgRegistry | undefined;
  if (o.registry !== undefined)
    try {
      names = await PgRegistry.open(o.registry, { logger: log });
      const accepted = await checkSharedWitness(o.dataDir, names, o.acceptEmptyRegistry === true);
      if (accepted)
        log.warn(
          { hadUsers: accepted.hadUsers },
          'starting with an empty registry database as asked: every name is free again',
        );
      await writeSharedWitness(o.dataDir, names, log);
    } catch (e) {
      registry.close();
      await names?.close();
      throw e;
    }
  if (acceptedEmpty)
    log.warn(
      { hadUsers: acceptedEmpty.hadUsers },
      'starting with an empty registry as asked: every name is free again',
    );
  let endpoint: TlsRpcEndpoint | undefined;
  let role: BootstrapRole;
  let adv: ReturnType<typeof advertisedHost>;
  try {
    adv = advertisedHost(o.host, o.advertise?.host, '--advertise');
  } catch (e) {
    registry.close();
    throw e;
  }
  if (adv.how === 'interface')
    log.info(
      { listen: o.host, advertise: adv.host, iface: adv.iface },
      'bound to a wildcard: advertising this address',
    );
  try {
    role = await startBootstrapRole(
      {
        identity,
        registry,
        names,
        clock,
        random,
        logger: log,
        metrics: o.metrics,
        async listen(self, keys) {
          const admitted = admittedRef(keys, () => clock.wallNow());
          endpoint = await TlsRpcEndpoint.listen({
            host: o.host,
            port: o.port,
            keyPair: keyPair(identity),
            self: o.advertise?.port ? { ...self, addr: hostPort(adv.host, o.advertise.port) } : self,
            advertiseHost: adv.host,
            // Adapters not yet admitted present their key-derived id; ring members their admission.
            verifyRef: (ref) => admitted(ref) || defaultVerifyRef(ref),
            clock,
            logger: log,
          });
          return endpoint;
        },
      },
      o,
    );
  } catch (e) {
    await endpoint?.close();
    registry.close();
    await names?.close();
    throw e;
  }
  // The shared registry's witness follows the user count (registry-pg-witness.ts).
  const shared = names;
  const witnessTimer = shared
    ? setInterval(() => void writeSharedWitness(o.dataDir, shared, log), SHARED_WITNESS_MS).unref()
    : undefined;
  return {
    server: role.server,
    info: role.info,
    async close() {
      clearInterval(witnessTimer);
      // Registrations answered but not yet marked published are marked before the registry closes.
      await role.server.flushMarks(false);
      await role.leave();
      await role.endpoint.close();
      registry.close();
      if (names) await writeSharedWitness(o.dataDir, names, log);
      await names?.close();
    },
  };
}
