/**
 * A binding's flow (flow.ts, RFC 5626 3) as kept across a restart with the
 * binding (registrar.ts `StoredBinding`, registrar-sqlite.ts).
 *
 * Only a UDP flow survives a restart: it is an address and port, and the
 * server's socket is on the same port after the restart, so the NAT mapping
 * the phone keeps open (its registrations, our keep-alives) still leads to it.
 * A flow over a connection (TCP, TLS, WebSocket) is that connection, which the
 * restart closed: it is not kept, and the restored binding has no flow, as
 * every binding had before flows were stored.
 */
import { isIP } from 'node:net';
import { fail, ok, type Result } from '../util/errors.ts';
import { type Peer, plainHost } from './transport.ts';

/** The text kept for `flow`, or undefined when the flow would not survive a restart. */
export function storedFlow(flow: Peer | undefined): string | undefined {
  if (flow?.transport !== 'UDP' || flow.connId !== undefined) return undefined;
  return `UDP|${flow.address}|${flow.port}`;
}

/** The flow a stored binding names: `storedFlow`'s text read back from disk, checked like any untrusted input. */
export function parseStoredFlow(text: unknown): Result<Peer> {
  if (typeof text !== 'string' || text.length > 80) return fail('flow is not a short text');
  const m = /^UDP\|([0-9a-fA-F:.]+)\|(\d{1,5})$/.exec(text);
  if (!m) return fail('flow is not UDP|address|port');
  if (isIP(plainHost(m[1])) === 0) return fail('flow address is not an IP address');
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return fail('flow port out of range');
  return ok({ transport: 'UDP', address: m[1], port });
}
