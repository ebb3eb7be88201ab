import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createNodeCertificate, type NodeCertificate } from '../../src/identity/certificates.ts';
import { rawEd25519PublicKey } from '../../src/rpc/tls-cert.ts';
import { type TlsListenOptions, TlsRpcEndpoint } from '../../src/rpc/tls-endpoint.ts';

export interface TestNode {
  keyPair: { privateKey: KeyObject; publicKey: KeyObject };
  key: Uint8Array;
  cert: NodeCertificate;
}

export async function makeNode(): Promise<TestNode> {
  const keyPair = generateKeyPairSync('ed25519');
  const key = rawEd25519PublicKey(keyPair.publicKey);
  if (!key.ok) throw new Error(key.error);
  return { keyPair, key: key.value, cert: await createNodeCertificate(keyPair) };
}

export async function listen(node?: TestNode, opts: Partial<TlsListenOptions> = {}): Promise<TlsRpcEndpoint> {
  const n = node ?? (await makeNode());
  return TlsRpcEndpoint.listen({ keyPair: n.keyPair, certificate: n.cert, ...opts });
}

/** Resolve once `pred` holds, polling on the event loop (the thing awaited is socket I/O, not a timer). */
export async function until(pred: () => boolean, what: string, maxTurns = 2000): Promise<void> {
  for (let i = 0; i < maxTurns; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`condition never held: ${what}`);
}
