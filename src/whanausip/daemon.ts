/**
 * A complete WhanauSIP node or gateway on real sockets: the Whanau DHT member
 * (whanau-daemon.ts) plus the SIP side (sip-node.ts) on UDP+TCP. Seed 003
 * section 4.7: "They each listen on 2 ports: one port listens for Whanau DHT
 * traffic and the other port responds to incoming SIP traffic." Used by the
 * `node` and `gateway` commands and the end-to-end tests.
 */
import { join } from 'node:path';
import type { DigestAlgorithm } from '../sip/digest.ts';
import { SipElement } from '../sip/element.ts';
import { type PhoneCredentials, phoneAuthOf } from '../sip/phone-credentials.ts';
import { Registrar } from '../sip/registrar.ts';
import { openBindings } from '../sip/registrar-sqlite.ts';
import { startKeepAlives } from '../sip/flow-keepalive.ts';
import { startSweeping } from '../sip/registrar-sweeper.ts';
import { observeTransport } from '../sip/observed-transport.ts';
import { type OpenedSecureSip, openSecureSip, type SecureSipConfig } from '../sip/secure-transports.ts';
import { TransportStack } from '../sip/transport-stack.ts';
import { formatAddr, parseAddr } from '../rpc/tls-dial.ts';
import { isRelayAddr } from '../rpc/relay.ts';
import type { RequestHandler } from '../rpc/types.ts';
import { OverlaySip, SIP_OVER_RING_METHOD } from '../overlay/sip-over-ring.ts';
import { recordKey } from './location-record.ts';
import { advertisedHost } from '../util/advertise.ts';
import { SystemClock } from '../util/clock.ts';
import { OverlayError } from '../util/errors.ts';
import { silentLogger } from '../util/log.ts';
import { Identity } from '../identity/identity.ts';
import { deliverToContacts } from '../sip/deliver-message.ts';
import { parseRequestUri } from '../sip/uri.ts';
import { CryptoRandom } from '../util/random.ts';
import { IM_METHOD, WhanauMessenger } from './instant-messages.ts';
import { publishedContact, WhanauSipNode } from './sip-node.ts';
import { BINDINGS_FILE, openWhanauData, WhanauDaemon, type WhanauDaemonOptions } from './whanau-daemon.ts';

export type WhanauSipRole = 'node' | 'gateway';

export interface WhanauSipOptions extends Omit<WhanauDaemonOptions, 'host' | 'port'> {
  role: WhanauSipRole;
  sipHost: string;
  sipPort: number;
  /** SIP over TLS for the phones, beside UDP and TCP. */
  secure?: SecureSipConfig;
  dhtHost: string;
  dhtPort: number;
  /** Any phone may register the node's identity without a password; warned at start. */
  openRegistration?: boolean;
  /** Phone users when there is no data directory (tests); default: `phone-users.json` in the data directory. */
  phoneUsers?: PhoneCredentials;
  /** Digest algorithms offered to the phone, in order (default SHA-256, MD5). */
  digestAlgorithms?: readonly DigestAlgorithm[];
}

export interface RunningWhanauSip {
  daemon: WhanauDaemon;
  sip: WhanauSipNode;
  /** `sip:<hash>@<sip host:port>`. */
  uri: string;
  secure?: OpenedSecureSip;
  close(): Promise<void>;
}

export async function startWhanauSip(o: WhanauSipOptions): Promise<RunningWhanauSip> {
  const log = o.logger ?? silentLogger;
  // Data files and identity are checked before any port is bound.
  const identity = o.identity ?? (o.dataDir ? openWhanauData(o.dataDir) : undefined);
  const clock = o.clock ?? new SystemClock();
  // A gateway takes no registrations, so it has no phone users to check.
  const phones = o.role === 'node' ? phoneAuthOf(o, clock, log) : undefined;
  // The SIP address in our record, Via and Contact: the --advertise host, else the bound one, never a wildcard.
  const adv = o.advertise ? parseAddr(o.advertise) : undefined;
  const advHost = adv?.ok ? adv.value.host : undefined;
  const sipAdv = advertisedHost(o.sipHost, advHost, '--advertise');
  if (sipAdv.how === 'interface')
    log.info({ advertise: sipAdv.host, iface: sipAdv.iface }, 'SIP bound to a wildcard: advertising this address');
  let transport: TransportStack;
  try {
    transport = await TransportStack.listen({ host: o.sipHost, port: o.sipPort }, { logger: log });
  } catch (e) {
    throw new OverlayError('BAD_CONFIG', `cannot listen for SIP on ${o.sipHost}:${o.sipPort}: ${(e as Error).message}`);
  }
  let secure: OpenedSecureSip | undefined;
  try {
    secure = await openSecureSip(transport, o.secure, { dataDir: o.dataDir, logger: log });
  } catch (e) {
    await transport.close();
    throw e instanceof OverlayError ? e : new OverlayError('BAD_CONFIG', (e as Error).message);
  }
  const element = new SipElement(
    { transport: observeTransport(transport, o.metrics), clock, logger: log },
    { advertise: { host: sipAdv.host } },
  );
  // A node keeps its phone's registration across restarts (as an adapter does), so its record
  // points at the phone at once instead of at the node until the phone registers again.
  const bindings = o.role === 'node' && o.dataDir ? openBindings(join(o.dataDir, BINDINGS_FILE), log) : undefined;
  const registrar =
    o.role === 'node' ? new Registrar({ clock, store: bindings?.store }, { minExpires: 10 }) : undefined;
  if (registrar && bindings) {
    const r = registrar.restore(bindings.rows);
    for (const s of r.skipped) log.warn({ aor: s.aor, reason: s.reason }, 'stored phone binding skipped');
    if (r.restored + r.expired > 0) log.info({ restored: r.restored, expired: r.expired }, 'phone bindings restored');
  }
  // Our record points at the phone registered as our own SIP URI, else at that URI.
  const contact = { contactOf: (hash: string) => publishedContact(registrar, `sip:${hash}@${element.hostport}`) };
  // Node role: instant messages to and from its phone over the DHT's links (instant-messages.ts).
  const ownIdentity = identity ?? Identity.generate();
  let seq = 0;
  // A gateway relays messages from any SIP client, signed by its own key (sip-node.ts); it has no phone of its own.
  const messenger = new WhanauMessenger({
    identity: ownIdentity,
    clock,
    random: o.random ?? new CryptoRandom(),
    log,
    endpoint: () => daemon.endpoint,
    lookup: (hash) => daemon.lookupRecord(hash),
    deliver: (fromHash, body, type) => {
      if (!registrar) return Promise.resolve(0);
      const own = parseRequestUri(`sip:${ownIdentity.id}@${element.hostport}`);
      const contacts = own.ok ? registrar.lookup(own.value).map((b) => ({ uri: b.contact.uri, flow: b.flow })) : [];
      return deliverToContacts(
        { element, clock, log },
        contacts,
        {
          from: `sip:${fromHash}@${element.hostport}`,
          to: `sip:${ownIdentity.id}@${element.hostport}`,
          body,
          contentType: type,
        },
        () => ++seq,
      );
    },
  });
  // SIP with a node behind a NAT (or from us, when we are) goes over the DHT link between the two (overlay/).
  let overlay: OverlaySip | undefined;
  const handlers: Record<string, RequestHandler> = {
    [IM_METHOD]: messenger.handle.bind(messenger),
    [SIP_OVER_RING_METHOD]: (m, p, c) => {
      if (!overlay) throw new OverlayError('RPC_REFUSED', 'starting');
      return overlay.answer(m, p, c);
    },
  };
  let daemon: WhanauDaemon;
  try {
    daemon = await WhanauDaemon.start({
      ...o,
      identity: ownIdentity,
      clock,
      host: o.dhtHost,
      port: o.dhtPort,
      contact,
      handlers,
    });
  } catch (e) {
    await element.close();
    bindings?.store.close();
    if (e instanceof OverlayError) throw e;
    throw new OverlayError('BAD_CONFIG', `cannot start the DHT on ${o.dhtHost}:${o.dhtPort}: ${(e as Error).message}`);
  }
  const ring = new OverlaySip(daemon.endpoint, transport, log);
  overlay = ring;
  const sip = new WhanauSipNode(
    {
      element,
      clock,
      registrar,
      auth: phones?.auth,
      messenger,
      logger: log,
      lookup: (hash) => daemon.lookupRecord(hash),
      ring: {
        // A callee node behind a NAT (its record names relays), or we are behind one: the call's SIP goes between
        // the two nodes over their link, both staying in the path.
        peerFor: (record) => {
          const key = recordKey(record.publicKey);
          if (key === daemon.hash || !(daemon.behindNat || isRelayAddr(record.host))) return undefined;
          const addr = isRelayAddr(record.host) ? record.host : formatAddr(record.host, record.port);
          return ring.peerFor({ id: key, addr, key: record.publicKey });
        },
        owns: (peer) => ring.owns(peer),
      },
    },
    { ownHash: daemon.hash },
  );
  // A new phone contact goes into our record at once; other nodes copy it at the next SETUP.
  sip.onBindingsChanged = () => daemon.publishOwnRecord();
  daemon.publishOwnRecord();
  if (phones?.warning) log.warn(phones.warning);
  const stopSweeping = registrar ? startSweeping(registrar, clock) : undefined;
  // NAT bindings in front of phones only their flow reaches stay open (sip/flow-keepalive.ts).
  const stopKeepAlives = registrar ? startKeepAlives(registrar, transport, clock) : undefined;
  return {
    daemon,
    sip,
    uri: sip.uri,
    secure,
    async close() {
      stopSweeping?.();
      stopKeepAlives?.();
      await element.close();
      await daemon.close();
      bindings?.store.close();
    },
  };
}
