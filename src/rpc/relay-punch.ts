/**
 * TCP simultaneous open (RFC 793 section 3.4) for a direct connection to a node behind a NAT, the two sides
 * having swapped addresses and ports through a relay (rpc/relay.ts `punchThrough`).
 */
import { connect, type Socket } from 'node:net';
import { parseAddr } from './tls-dial.ts';

/** How long both sides keep dialling each other for a simultaneous open (ms). */
export const PUNCH_MS = 2500;

/** A port to dial from, for one simultaneous open (above the usual ephemeral range's start, below its end). */
export function pickPort(): number {
  return 20_000 + Math.floor(Math.random() * 30_000);
}

export function hostOf(addr: string): string {
  const a = parseAddr(addr);
  return (a.ok ? a.value.host : addr).replace(/^::ffff:/, '');
}

/**
 * Dial `host:port` from local port `local` again and again until a connection opens or `ms` pass: the first SYNs
 * may meet a NAT that has not seen ours yet (dropped or refused); the one that crosses the other side's SYN opens
 * the connection (RFC 793 simultaneous open, RFC 5382 NAT behaviour).
 */
export function simultaneousOpen(local: number, host: string, port: number, ms: number): Promise<Socket> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const left = end - Date.now();
      if (left <= 0) {
        reject(new Error('simultaneous open timed out'));
        return;
      }
      const s = connect({ host, port, localPort: local });
      const t = setTimeout(() => s.destroy(new Error('timeout')), Math.min(left, 1000));
      s.once('connect', () => {
        clearTimeout(t);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        s.destroy();
        if (e.code === 'EADDRINUSE') reject(e);
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}
