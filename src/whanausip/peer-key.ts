/**
 * Learning a social peer's key from its hash (seed 003 sections 3.2.1 and
 * 4.7). A peer is configured as `<hash>@host:port`; we open one TLS 1.3
 * connection, presenting our own node certificate as any RPC link does, read
 * the Ed25519 key of the certificate the peer proved possession of
 * (CertificateVerify, RFC 8446 section 4.4.3), and accept it only if its
 * SHA-1 is the configured hash. From then on the key is pinned like any other.
 */
import tls from 'node:tls';
import { sha1Hex } from '../identity/fingerprint.ts';
import { verifyNodeCertificate } from '../rpc/tls-cert.ts';
import { parseAddr } from '../rpc/tls-dial.ts';
import type { Clock } from '../util/clock.ts';
import { OverlayError } from '../util/errors.ts';

export interface ProbeOptions {
  /** TLS context with our node certificate (a server asks for a client certificate). */
  context: tls.SecureContext;
  clock: Clock;
  timeoutMs?: number;
}

/**
 * Resolve with the raw key of the node listening at `addr` if SHA-1(key) is
 * `hash`. Rejects with RPC_UNREACHABLE (no TLS answer) or
 * RPC_PEER_KEY_MISMATCH (a key that does not hash to `hash`).
 */
export function probePeerKey(addr: string, hash: string, opts: ProbeOptions): Promise<Uint8Array> {
  const parsed = parseAddr(addr);
  if (!parsed.ok) return Promise.reject(new OverlayError('RPC_UNREACHABLE', `bad address: ${parsed.error}`));
  const where = parsed.value;
  return new Promise((resolve, reject) => {
    let settled = false;
    const sock = tls.connect({
      host: where.host,
      port: where.port,
      secureContext: opts.context,
      rejectUnauthorized: false, // trust comes from the hash, checked below
      checkServerIdentity: () => undefined,
    });
    const finish = (err: OverlayError | null, key?: Uint8Array): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      sock.destroy();
      if (err) reject(err);
      else resolve(key as Uint8Array);
    };
    const timer = opts.clock.setTimer(opts.timeoutMs ?? 3000, () =>
      finish(new OverlayError('RPC_UNREACHABLE', `no TLS answer from ${addr}`)),
    );
    sock.on('error', (e) => finish(new OverlayError('RPC_UNREACHABLE', `${addr}: ${e.message}`)));
    sock.once('close', () => finish(new OverlayError('RPC_UNREACHABLE', `${addr}: closed during handshake`)));
    sock.once('secureConnect', () => {
      const got = verifyNodeCertificate(sock.getPeerX509Certificate(), [], opts.clock.wallNow());
      if (!got.ok) return finish(new OverlayError('RPC_PEER_KEY_MISMATCH', `${addr}: ${got.error}`));
      if (sha1Hex(got.value) !== hash)
        return finish(
          new OverlayError('RPC_PEER_KEY_MISMATCH', `${addr} presents a key that does not hash to ${hash}`),
        );
      finish(null, got.value);
    });
  });
}
