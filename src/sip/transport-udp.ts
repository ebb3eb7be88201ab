import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';

/**
 * Address resolution for sends: almost every destination is an IP literal (a packet's source, a Via's
 * `received`), which needs no resolver, so the answer is given at once instead of on a later tick; names
 * (a Via sent-by or maddr that is a domain, RFC 3263) still go to the system resolver.
 */
function literalLookup(
  hostname: string,
  options: LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(hostname);
  if (family !== 0) callback(null, hostname, family);
  else dnsLookup(hostname, options, callback);
}

/** The largest datagram we accept or send (an IPv4 UDP payload can be 65,507 bytes). */
export const MAX_DATAGRAM = 65_507;

/**
 * One UDP socket of the SIP transport (RFC 3261 18.1.1 / 18.2.1). Only moves
 * bytes: parsing and Via handling live in the transport stack.
 */
export class UdpEndpoint {
  private readonly socket: Socket;
  private handler: (buf: Buffer, address: string, port: number) => void = () => {};
  private closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (buf, rinfo) => {
      if (this.closed) return;
      this.handler(buf, rinfo.address, rinfo.port);
    });
    // A UDP socket reports ICMP unreachable and similar as 'error'; the socket stays usable.
    socket.on('error', () => {});
  }

  static bind(host: string, port: number): Promise<UdpEndpoint> {
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false, lookup: literalLookup });
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => {
        socket.close();
        reject(e);
      };
      socket.once('error', onError);
      socket.bind(port, host, () => {
        socket.off('error', onError);
        try {
          socket.setRecvBufferSize(4 * 1024 * 1024);
          socket.setSendBufferSize(4 * 1024 * 1024);
        } catch {
          // Buffer sizes are a best effort; the kernel may cap them.
        }
        resolve(new UdpEndpoint(socket));
      });
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** The kernel's receive queue for this socket, in bytes (admission control shrinks it under overload). */
  setReceiveBytes(bytes: number): void {
    try {
      this.socket.setRecvBufferSize(bytes);
    } catch {
      // A best effort, as at bind: the kernel may refuse or cap the size.
    }
  }

  onDatagram(fn: (buf: Buffer, address: string, port: number) => void): void {
    this.handler = fn;
  }

  send(buf: Buffer, address: string, port: number, cb: (err: Error | null) => void): void {
    if (this.closed) {
      cb(new Error('socket closed'));
      return;
    }
    if (buf.length > MAX_DATAGRAM) {
      cb(new Error('datagram too large'));
      return;
    }
    try {
      this.socket.send(buf, port, address, (err) => cb(err ?? null));
    } catch (e) {
      cb(e as Error);
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
