/**
 * The relay protocol's method names, limits, counters and the narrow view of the endpoint both of its roles use
 * (rpc/relay.ts for a circuit's ends, rpc/relay-server.ts for the relay between them).
 */
import type { Duplex } from 'node:stream';
import type { Clock } from '../util/clock.ts';
import { keyHex } from './tls-dial.ts';
import type { Caller, NodeRef, Payload } from './types.ts';

export const RELAY_METHOD = {
  REGISTER: 'relay.register',
  OPEN: 'relay.open',
  INCOMING: 'relay.incoming',
  DATA: 'relay.data',
  CLOSE: 'relay.close',
  PUNCH: 'relay.punch',
} as const;

export interface RelayLimits {
  /** Clients one relay serves at once. */
  maxClients: number;
  /** Circuits opened through this relay per second (a burst of twice as many). */
  opensPerSecond: number;
  /** Data messages relayed per second per circuit end (a burst of twice as many). */
  messagesPerSecond: number;
  /** Circuits one client may have open at once. */
  maxCircuitsPerClient: number;
}

export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxClients: 64,
  opensPerSecond: 50,
  messagesPerSecond: 2000,
  maxCircuitsPerClient: 64,
});

export interface RelayStats {
  /** Relay side. */
  clients: number;
  registrationsRefused: number;
  circuitsOpened: number;
  circuitsRefused: number;
  messagesRelayed: number;
  bytesRelayed: number;
  messagesRefused: number;
  /** Client and caller side. */
  circuitsDialled: number;
  circuitsAccepted: number;
  /** Direct connections by TCP simultaneous open, made or failed (then the circuit is used). */
  punchedDirect: number;
  punchFailed: number;
  /** Relay side: punches coordinated. */
  punchesCoordinated: number;
}

/** What the relay needs of its endpoint: requests that use only an open link to a key, never a new connection. */
export interface RelayHost {
  readonly self: NodeRef;
  readonly clock: Clock;
  request(
    to: NodeRef,
    method: string,
    payload: Payload,
    opts?: { timeoutMs?: number; linkOnly?: boolean },
  ): Promise<Payload>;
  /** Run the server side of TLS over a circuit that reached us (we are the client behind a NAT). */
  acceptStream(stream: Duplex): void;
}

export function newRelayStats(): RelayStats {
  return {
    clients: 0,
    registrationsRefused: 0,
    circuitsOpened: 0,
    circuitsRefused: 0,
    messagesRelayed: 0,
    bytesRelayed: 0,
    messagesRefused: 0,
    circuitsDialled: 0,
    circuitsAccepted: 0,
    punchedDirect: 0,
    punchFailed: 0,
    punchesCoordinated: 0,
  };
}

export function hexOf(caller: Caller): string {
  return keyHex(caller.key);
}

/** A payload's field when it passes `check` (payloads come from the network: anything may be missing or wrong). */
export function field<T>(p: Payload, name: string, check: (v: unknown) => v is T): T | undefined {
  const v = typeof p === 'object' && p !== null ? (p as Record<string, unknown>)[name] : undefined;
  return check(v) ? v : undefined;
}
export const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
export const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 64;
export const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
