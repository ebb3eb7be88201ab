/**
 * The address a daemon tells others to dial. A daemon bound to a wildcard
 * (`0.0.0.0`, `::`) listens on every interface, but a wildcard is not an
 * address anyone can dial: put in the ring, a location record, a Via or a
 * Contact, it sends the other side to itself. So every advertised address is
 * a concrete one: `--advertise` when given, else the bound address when it is
 * concrete, else one routable address of this host chosen from its interfaces
 * (and logged by the caller), else a one-line error asking for `--advertise`.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { type NetworkInterfaceInfo, networkInterfaces } from 'node:os';
import { parseHostPort } from './args.ts';
import { OverlayError } from './errors.ts';

export interface HostPortLike {
  host: string;
  port: number;
}

/** What `advertisedHost` decided, and why (for the start-up log line). */
export interface AdvertisedHost {
  host: string;
  /** 'given': --advertise; 'bound': the listen address itself; 'interface': chosen from the host's interfaces. */
  how: 'given' | 'bound' | 'interface';
  /** For 'interface': the interface it came from. */
  iface?: string;
}

function bare(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** `0.0.0.0`, `::` and their spellings: an address to listen on, never one to dial. */
export function isWildcard(host: string): boolean {
  const h = bare(host).toLowerCase();
  if (isIPv4(h)) return h === '0.0.0.0';
  if (isIPv6(h)) return /^[0:]+$/.test(h);
  return false;
}

/** IPv6 link-local (fe80::/10) addresses need a zone to be dialled: never advertised. */
function linkLocal6(a: string): boolean {
  return /^fe[89ab]/i.test(a);
}

/**
 * One routable address of this host in `family` (4 or 6): not loopback, not link-local; interfaces in name order so
 * the choice is stable across restarts. Undefined when there is none.
 */
export function routableAddress(
  family: 4 | 6,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): { address: string; iface: string } | undefined {
  for (const name of Object.keys(interfaces).sort()) {
    for (const i of interfaces[name] ?? []) {
      if (i.internal) continue;
      if (family === 4 && i.family === 'IPv4' && !i.address.startsWith('169.254.'))
        return { address: i.address, iface: name };
      if (family === 6 && i.family === 'IPv6' && !linkLocal6(i.address) && i.address !== '::1')
        return { address: i.address, iface: name };
    }
  }
  return undefined;
}

/**
 * The host to advertise for a socket bound to `bound`, given `--advertise` (`given`, named `option` in errors).
 * An IPv6 wildcard is dual-stack: an IPv6 address is preferred, an IPv4 one taken when there is none.
 */
export function advertisedHost(
  bound: string,
  given: string | undefined,
  option: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): AdvertisedHost {
  if (given !== undefined) {
    if (isWildcard(given))
      throw new OverlayError('BAD_ARGUMENT', `${option} must name an address others can dial, not ${given}`);
    return { host: bare(given), how: 'given' };
  }
  const b = bare(bound);
  if (!isWildcard(b)) return { host: b, how: 'bound' };
  const v6 = isIPv6(b);
  const found = (v6 ? routableAddress(6, interfaces) : undefined) ?? routableAddress(4, interfaces);
  if (!found)
    throw new OverlayError(
      'BAD_CONFIG',
      `bound to ${bound} but this host has no routable ${v6 ? 'IPv6 or IPv4' : 'IPv4'} address: pass ${option} host:port`,
    );
  return { host: found.address, how: 'interface', iface: found.iface };
}

/** `host:port` with IPv6 in brackets. */
export function hostPort(host: string, port: number): string {
  const h = bare(host);
  return isIPv6(h) ? `[${h}]:${port}` : `${h}:${port}`;
}

/** `--advertise host:port` (`[v6]:port`); port 0 means "the bound port". A wildcard is refused here already. */
export function parseAdvertise(value: string, option: string): { host: string; port?: number } {
  const hp = parseHostPort(value, option);
  if (isWildcard(hp.host))
    throw new OverlayError('BAD_ARGUMENT', `${option} must name an address others can dial, not ${hp.host}`);
  return hp.port === 0 ? { host: hp.host } : { host: hp.host, port: hp.port };
}

/**
 * Whether `host` is an address of one of this host's interfaces. An advertised address that is not (given with
 * `--advertise`) is a NAT's public address forwarding to us: the daemon is itself behind a NAT.
 */
export function isLocalAddress(
  host: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): boolean {
  const h = bare(host).toLowerCase();
  for (const list of Object.values(interfaces))
    for (const i of list ?? []) if (i.address.toLowerCase() === h) return true;
  return false;
}

/**
 * The address of this host's interface on the same IPv4 subnet as `peer`, if any (by address and netmask): where
 * a device on that LAN reaches us. A daemon behind a NAT must name this one, not its public address, to its LAN
 * (most home routers do not hairpin packets sent to their public address back inside).
 */
export function localAddressFacing(
  peer: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): string | undefined {
  const p = bare(peer).replace(/^::ffff:/i, '');
  if (!isIPv4(p)) return undefined;
  const num = (a: string) => a.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
  for (const name of Object.keys(interfaces).sort())
    for (const i of interfaces[name] ?? []) {
      if (i.internal || i.family !== 'IPv4') continue;
      const mask = num(i.netmask);
      if ((num(i.address) & mask) >>> 0 === (num(p) & mask) >>> 0) return i.address;
    }
  return undefined;
}
