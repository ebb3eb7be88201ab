/**
 * Start an adapter on real sockets: TLS 1.3 RPC with pinned keys between ring
 * members, UDP+TCP SIP towards the phone. Used by the `adapter` and `demo`
 * commands, the end-to-end tests and the benchmark. State lives under the
 * data directory: `node/identity.pem` (0600), `trust.sqlite` and
 * `bindings.sqlite` (the phones' registrations), `users/<name>.pem` (0600),
 * and `bootstraps.json` (the bootstrap set, for fail-over at start).
 *
 * What the role does (admission, joining, founding order) is in roles.ts and
 * ring-join.ts, shared with the in-memory overlay; this file only adds the
 * sockets, the files and the adapter's SIP half: phones get 503 with
 * Retry-After until the adapter is on the ring and has registered the users
 * of its restored phone bindings again.
 *
 * A bootstrap's daemon is bootstrap-daemon.ts, and the TLS pieces both share
 * are in daemon-tls.ts; both are re-exported here for the callers that start
 * either role from one place.
 */
import { join } from 'node:path';
import { TlsRpcEndpoint } from '../rpc/tls-endpoint.ts';
import type { DigestAlgorithm } from '../sip/digest.ts';
import { SipElement } from '../sip/element.ts';
import { FlowTokens } from '../sip/flow.ts';
import { type PhoneCredentials, phoneAuthOf } from '../sip/phone-credentials.ts';
import { Registrar } from '../sip/registrar.ts';
import { openBindings } from '../sip/registrar-sqlite.ts';
import { startKeepAlives } from '../sip/flow-keepalive.ts';
import { startSweeping } from '../sip/registrar-sweeper.ts';
import { observeTransport } from '../sip/observed-transport.ts';
import { type OpenedSecureSip, openSecureSip, type SecureSipConfig } from '../sip/secure-transports.ts';
import { TransportStack } from '../sip/transport-stack.ts';
import type { TransportName } from '../sip/transport.ts';
import { OverlaySip, SIP_OVER_RING_METHOD } from '../overlay/sip-over-ring.ts';
import {
  type AdvertisedHost,
  advertisedHost,
  hostPort,
  isLocalAddress,
  isWildcard,
  localAddressFacing,
} from '../util/advertise.ts';
import { bytesEqual } from '../util/bytes.ts';
import { SystemClock } from '../util/clock.ts';
import { OverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import type { Metrics } from '../util/metrics.ts';
import { CryptoRandom } from '../util/random.ts';
import { Adapter, respondNotReady } from './adapter.ts';
import type { CallObserver } from './call-record.ts';
import type { AdapterNode } from './adapter-node.ts';
import { loadBootstrapSet, saveBootstrapSet } from './bootstrap-spec.ts';
import type { FlowEvent, SecurityMode } from './call-common.ts';
import type { RebuildMode } from './key-lookup.ts';
import { PhoneMessenger } from './phone-messages.ts';
import { PhoneSubscriptions } from './phone-presence.ts';
import { SqliteDeliveredLog } from './delivered-log.ts';
import { RegisteredPhones } from './local-phones.ts';
import type { BootstrapInfo } from './messages.ts';
import { openAdapterData, rememberedRingPort, rememberRingPort } from './data-dir.ts';
import { keyPair } from './daemon-tls.ts';
import { admittedRef } from './ring-records.ts';
import { type AdapterRole, startAdapterRole } from './roles.ts';
import { FileUserKeys } from './user-keys.ts';

export { type BootstrapDaemonOptions, type RunningBootstrap, startBootstrapDaemon } from './bootstrap-daemon.ts';
export { fetchPeerKey } from './daemon-tls.ts';

export interface AdapterDaemonOptions {
  sipHost: string;
  sipPort: number;
  rpcHost?: string;
  rpcPort?: number;
  /**
   * The SIP address phones and callers reach this adapter at (`--advertise`; the port defaults to the bound one).
   * Its host is also the ring's, unless `rpcAdvertise` says otherwise. A wildcard bind without it advertises a
   * routable address of this host, or refuses to start (util/advertise.ts).
   */
  advertise?: { host: string; port?: number };
  /** The ring address others dial (`--advertise-rpc`), when it is not the SIP host with the bound ring port. */
  rpcAdvertise?: { host: string; port?: number };
  bootstrap: BootstrapInfo;
  /** Keys and trust store persist here; in memory when absent. */
  dataDir?: string;
  mode?: SecurityMode;
  rebuild?: RebuildMode;
  timeoutMs?: number;
  logger?: Logger;
  stabilizeMs?: number;
  onEvent?: (e: FlowEvent) => void;
  /** Reuse of users verified through the ring (ms, default 30 s; 0: every call fetches key pieces again). */
  cacheMs?: number;
  /** How long a message stored for an offline user lives in the ring (ms; default and most: 7 days). */
  mailboxTtlMs?: number;
  /** Other bootstraps of the set to fail over to (besides those learnt on earlier starts, kept in the data dir). */
  bootstraps?: BootstrapInfo[];
  /** How long to keep asking the bootstraps for admission at start (ms, default 120 s). */
  bootstrapWaitMs?: number;
  /** Make a new node key although the data directory holds state (the old key was lost). */
  newNodeKey?: boolean;
  /** New names sent to the bootstrap per minute (default: no cap; the `adapter` command applies 10). */
  newNamesPerMinute?: number;
  /** Any phone may register any name and call as it, without a password (the local demo); warned at start. */
  openRegistration?: boolean;
  /** Join as a ring client through relays without a dial-back (a NAT without port forward; found by itself otherwise). */
  behindNat?: boolean;
  /** A ring client: how often it renews its relays (ms, default 20 s); one missing two renewals is replaced. */
  relayRenewMs?: number;
  /** Phone users when there is no data directory (tests); default: `phone-users.json` in the data directory. */
  phoneUsers?: PhoneCredentials;
  /** Digest algorithms offered to phones, in order (default SHA-256, MD5). */
  digestAlgorithms?: readonly DigestAlgorithm[];
  /** Where SIP traffic and the ring report their events (default: not kept; see src/ops). */
  metrics?: Metrics;
  /** Told about each call placed through this adapter (metrics, the dashboard). */
  onCall?: CallObserver;
  /** SIP over TLS and over WebSocket for the phones (default: UDP and TCP only). */
  secure?: SecureSipConfig;
  /** Plain HTTP(S) requests on the WebSocket port (the browser phone's page). */
  onHttp?: Parameters<typeof openSecureSip>[2]['onHttp'];
}

/** Default reuse of a verified user: long enough for call bursts, short enough that a move is seen soon. */
export const DEFAULT_VERIFIED_CACHE_MS = 30_000;

export interface RunningAdapter {
  adapter: Adapter;
  node: AdapterNode;
  sipAddr: string;
  /** The TLS and WebSocket listeners and their certificate, when asked for. */
  secure?: OpenedSecureSip;
  /** The bootstrap that admitted this adapter (the configured one, or another of its set). */
  bootstrap: BootstrapInfo;
  close(): Promise<void>;
}

export async function startAdapterDaemon(o: AdapterDaemonOptions): Promise<RunningAdapter> {
  const log = o.logger ?? silentLogger;
  const clock = new SystemClock();
  const random = new CryptoRandom();
  // Node key and trust store are checked before a port is bound: a damaged file is a one-line fatal error.
  const { identity, trust } = openAdapterData(o.dataDir, log, o);
  // Like the files above, checked before a port is bound (a damaged one is a one-line fatal error).
  let delivered: SqliteDeliveredLog | undefined;
  try {
    delivered = o.dataDir ? new SqliteDeliveredLog(join(o.dataDir, 'delivered.sqlite'), log) : undefined;
  } catch (e) {
    trust.close();
    throw e;
  }
  const { auth, warning } = phoneAuthOf(o, clock, log);
  const host = o.rpcHost ?? o.sipHost;
  // A wildcard is never advertised: the address others dial is decided before anything is bound.
  let sipAdv: AdvertisedHost;
  let rpcAdv: AdvertisedHost;
  try {
    sipAdv = advertisedHost(o.sipHost, o.advertise?.host, '--advertise');
    // The ring's host: --advertise-rpc, else the SIP one's when the ring shares the SIP host or a wildcard.
    rpcAdv =
      o.rpcAdvertise !== undefined
        ? advertisedHost(host, o.rpcAdvertise.host, '--advertise-rpc')
        : o.rpcHost === undefined || isWildcard(o.rpcHost)
          ? sipAdv
          : advertisedHost(o.rpcHost, undefined, '--advertise-rpc');
  } catch (e) {
    trust.close();
    throw e;
  }
  if (sipAdv.how === 'interface')
    log.info({ advertise: sipAdv.host, iface: sipAdv.iface }, 'bound to a wildcard: advertising this address');
  const rpcSelfAddr = o.rpcAdvertise?.port ? hostPort(rpcAdv.host, o.rpcAdvertise.port) : undefined;
  // The phones' port first: while the adapter is starting they are asked to come back (503 with Retry-After).
  let transport: TransportStack;
  try {
    transport = await TransportStack.listen({ host: o.sipHost, port: o.sipPort }, { logger: log });
  } catch (e) {
    throw new OverlayError('BAD_CONFIG', `cannot listen for SIP on ${o.sipHost}:${o.sipPort}: ${(e as Error).message}`);
  }
  let secure: OpenedSecureSip | undefined;
  try {
    secure = await openSecureSip(transport, o.secure, { dataDir: o.dataDir, logger: log, onHttp: o.onHttp });
  } catch (e) {
    await transport.close();
    throw e instanceof OverlayError ? e : new OverlayError('BAD_CONFIG', (e as Error).message);
  }
  const element = new SipElement(
    { transport: observeTransport(transport, o.metrics), clock, logger: log },
    { advertise: { host: sipAdv.host, port: o.advertise?.port } },
  );
  element.handle({ onRequest: (inc) => respondNotReady(inc, 'adapter starting') });
  // D8: the configured bootstrap first, then every other bootstrap of the set learnt on earlier starts.
  const known = o.dataDir ? loadBootstrapSet(o.dataDir, log) : [];
  const candidates = [o.bootstrap, ...(o.bootstraps ?? []), ...known].filter(
    (b, i, all) => all.findIndex((x) => bytesEqual(x.key, b.key)) === i,
  );
  const bindings = o.dataDir ? openBindings(join(o.dataDir, 'bindings.sqlite'), log) : undefined;
  const registrar = new Registrar({ clock, store: bindings?.store }, { minExpires: 10 });
  if (bindings) {
    const r = registrar.restore(bindings.rows);
    for (const s of r.skipped) log.warn({ aor: s.aor, reason: s.reason }, 'stored phone binding skipped');
    if (r.restored + r.expired > 0) log.info({ restored: r.restored, expired: r.expired }, 'phone bindings restored');
  }
  // One secret for the 302 targets the callee side names and the routes the SIP half checks (phone-flows.ts).
  const tokens = new FlowTokens();
  // Advertising an address that is not ours: a NAT forwards it to us, and our phones are behind it too.
  const behindNat = sipAdv.how === 'given' && !isWildcard(sipAdv.host) && !isLocalAddress(sipAdv.host);
  if (behindNat)
    log.info({ advertise: sipAdv.host }, 'advertised address is not local: behind a NAT, staying in every call path');
  const phoneRoute = {
    hostport: (t?: TransportName) => element.hostportOf(t ?? 'UDP'),
    offers: (t: TransportName) => transport.portOf(t) !== undefined,
    tokens,
    wallNow: () => clock.wallNow(),
    behindNat,
  };
  const phones = new RegisteredPhones(registrar, phoneRoute);
  const inbox = new PhoneMessenger({ element, phones, clock, logger: log });
  const subscriptions = new PhoneSubscriptions({ element, phones, clock, logger: log });

  let role: AdapterRole<RegisteredPhones>;
  try {
    role = await startAdapterRole(
      {
        identity,
        trust,
        phones,
        inbox,
        presencePhones: subscriptions,
        delivered,
        keys: o.dataDir ? new FileUserKeys(join(o.dataDir, 'users')) : undefined,
        clock,
        random,
        logger: log,
        metrics: o.metrics,
        admissionEndpoint: () =>
          TlsRpcEndpoint.listen({ host, port: 0, keyPair: keyPair(identity), advertiseHost: rpcAdv.host, clock }),
        listen: async (self, keys) => {
          const listenOn = (port: number) =>
            TlsRpcEndpoint.listen({
              host,
              port,
              keyPair: keyPair(identity),
              self: rpcSelfAddr ? { ...self, addr: rpcSelfAddr } : self,
              advertiseHost: rpcAdv.host,
              verifyRef: admittedRef(keys, () => clock.wallNow()),
              clock,
              logger: log,
            });
          if (o.rpcPort !== undefined) return listenOn(o.rpcPort);
          // Without --rpc: the port of the last start when it is free, so a restart keeps its ring address.
          const before = rememberedRingPort(o.dataDir);
          let endpoint: TlsRpcEndpoint;
          try {
            endpoint = await listenOn(before ?? 0);
          } catch (e) {
            if (before === undefined) throw e;
            log.warn(
              { port: before, err: (e as Error).message },
              'ring port of the last start is taken; using another',
            );
            endpoint = await listenOn(0);
          }
          if (endpoint.port !== before) rememberRingPort(o.dataDir, endpoint.port, log);
          return endpoint;
        },
      },
      {
        bootstraps: candidates,
        budgetMs: o.bootstrapWaitMs,
        holdUntilReady: true,
        checkReachability: true,
        behindNat: o.behindNat,
        relayRenewMs: o.relayRenewMs,
        sipAddr: element.hostport,
        mode: o.mode,
        rebuild: o.rebuild,
        timeoutMs: o.timeoutMs,
        onEvent: o.onEvent,
        cacheMs: o.cacheMs ?? DEFAULT_VERIFIED_CACHE_MS,
        mailboxTtlMs: o.mailboxTtlMs,
        stabilizeMs: o.stabilizeMs,
        newNamesPerMinute: o.newNamesPerMinute,
      },
    );
  } catch (e) {
    await element.close();
    trust.close();
    bindings?.store.close();
    delivered?.close();
    throw e;
  }
  const { node } = role;
  // SIP to and from adapters behind NATs (or from us, when we are) goes over the ring (overlay/sip-over-ring.ts).
  const overlay = new OverlaySip(role.endpoint, transport, log);
  node.methods.set(SIP_OVER_RING_METHOD, overlay.answer);
  if (role.client) {
    // No port forward: our phones are behind our NAT too, and we stay in the path of every call.
    phoneRoute.behindNat = true;
    log.info({ ring: role.endpoint.self.addr }, 'behind a NAT without a port forward: staying in every call path');
  }
  if (o.dataDir) saveBootstrapSet(o.dataDir, role.admitted.bootstraps, log);
  // Behind a NAT, a phone on our LAN must be given our LAN address (no hairpin through the router's public one).
  const facing = behindNat
    ? (peer: { address: string }) => {
        const local = localAddressFacing(peer.address);
        return local ? hostPort(local, transport.local.port) : undefined;
      }
    : undefined;
  const adapter = new Adapter({
    node,
    element,
    clock,
    auth,
    subscriptions,
    tokens,
    behindNat: behindNat || role.client,
    facing,
    overlay,
    relayed: role.client,
    logger: log,
    onCall: o.onCall,
  });
  if (bindings) {
    // D7: until the restored users are registered again, their phones and callers are asked to retry.
    adapter.holdUntilReady();
    const r = await adapter.restoreUsers();
    if (r.users + r.failed > 0) log.info(r, 'users of restored phone bindings registered with the bootstrap again');
  }
  adapter.setReady();
  if (warning) log.warn(warning);
  const stopSweeping = startSweeping(registrar, clock);
  // NAT bindings in front of phones only their flow reaches stay open (sip/flow-keepalive.ts).
  const stopKeepAlives = startKeepAlives(registrar, transport, clock);
  return {
    adapter,
    node,
    sipAddr: element.hostport,
    secure,
    bootstrap: role.bootstrap,
    async close() {
      stopSweeping();
      stopKeepAlives();
      adapter.stopRetries();
      node.presence.stop();
      subscriptions.close();
      await role.leave();
      await element.close();
      await role.endpoint.close();
      trust.close();
      bindings?.store.close();
      delivered?.close();
    },
  };
}
