/**
 * A complete WhanauSIP node or gateway on real sockets: the Whanau DHT member
 * (whanau-daemon.ts) plus the SIP side (sip-node.ts) on UDP+TCP. Seed 003
 * section 4.7: "They each listen on 2 ports: one port listens for Whanau DHT
 * traffic and the other port responds to incoming SIP traffic." Used by the
 * `node` and `gateway` commands and the end-to-end tests.
 */
import { SipElement } from '../sip/element.ts';
import { Registrar } from '../sip/registrar.ts';
import { startSweeping } from '../sip/registrar-sweeper.ts';
import { TransportStack } from '../sip/transport-stack.ts';
import { SystemClock } from '../util/clock.ts';
import { OverlayError } from '../util/errors.ts';
import { silentLogger } from '../util/log.ts';
import { publishedContact, WhanauSipNode } from './sip-node.ts';
import { WhanauDaemon, type WhanauDaemonOptions } from './whanau-daemon.ts';

export type WhanauSipRole = 'node' | 'gateway';

export interface WhanauSipOptions extends Omit<WhanauDaemonOptions, 'host' | 'port'> {
  role: WhanauSipRole;
  sipHost: string;
  sipPort: number;
  dhtHost: string;
  dhtPort: number;
}

export interface RunningWhanauSip {
  daemon: WhanauDaemon;
  sip: WhanauSipNode;
  /** `sip:<hash>@<sip host:port>`. */
  uri: string;
  close(): Promise<void>;
}

export async function startWhanauSip(o: WhanauSipOptions): Promise<RunningWhanauSip> {
  const log = o.logger ?? silentLogger;
  let transport: TransportStack;
  try {
    transport = await TransportStack.listen({ host: o.sipHost, port: o.sipPort }, { logger: log });
  } catch (e) {
    throw new OverlayError('BAD_CONFIG', `cannot listen for SIP on ${o.sipHost}:${o.sipPort}: ${(e as Error).message}`);
  }
  const clock = o.clock ?? new SystemClock();
  const element = new SipElement({ transport, clock, logger: log });
  const registrar = o.role === 'node' ? new Registrar({ clock }, { minExpires: 10 }) : undefined;
  // Our record points at the phone registered as our own SIP URI, else at that URI.
  const contact = { contactOf: (hash: string) => publishedContact(registrar, `sip:${hash}@${element.hostport}`) };
  let daemon: WhanauDaemon;
  try {
    daemon = await WhanauDaemon.start({ ...o, clock, host: o.dhtHost, port: o.dhtPort, contact });
  } catch (e) {
    await element.close();
    if (e instanceof OverlayError) throw e;
    throw new OverlayError('BAD_CONFIG', `cannot start the DHT on ${o.dhtHost}:${o.dhtPort}: ${(e as Error).message}`);
  }
  const sip = new WhanauSipNode(
    { element, clock, registrar, logger: log, lookup: (hash) => daemon.lookupRecord(hash) },
    { ownHash: daemon.hash },
  );
  // A new phone contact goes into our record at once; other nodes copy it at the next SETUP.
  sip.onBindingsChanged = () => daemon.publishOwnRecord();
  daemon.publishOwnRecord();
  const stopSweeping = registrar ? startSweeping(registrar, clock) : undefined;
  return {
    daemon,
    sip,
    uri: sip.uri,
    async close() {
      stopSweeping?.();
      await element.close();
      await daemon.close();
    },
  };
}
