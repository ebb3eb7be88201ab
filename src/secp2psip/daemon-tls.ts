/**
 * TLS pieces both daemons (bootstrap-daemon.ts, daemon.ts) share: the node key pair their RPC endpoints
 * present, and reading a peer's node key before trusting it (`--bootstrap host:port` given without a key).
 */
import * as tls from 'node:tls';
import type { Identity } from '../identity/identity.ts';
import { rawEd25519PublicKey } from '../rpc/tls-cert.ts';
import { OverlayError } from '../util/errors.ts';

export function keyPair(id: Identity) {
  return { privateKey: id.signingKey, publicKey: id.publicSigningKey };
}

/** Read a TLS peer's Ed25519 node key without trusting it yet (for `--bootstrap host:port` without a key). */
export function fetchPeerKey(host: string, port: number, timeoutMs = 3000): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new OverlayError('RPC_UNREACHABLE', `no TLS answer from ${host}:${port}`));
    }, timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      const cert = s.getPeerX509Certificate();
      s.destroy();
      const k = cert ? rawEd25519PublicKey(cert.publicKey) : undefined;
      if (k?.ok) resolve(k.value);
      else reject(new OverlayError('IDENTITY_BAD_KEY', 'peer does not present an Ed25519 node key'));
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(new OverlayError('RPC_UNREACHABLE', `${host}:${port}: ${e.message}`));
    });
  });
}
