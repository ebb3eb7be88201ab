import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createNodeCertificate, type NodeCertificate } from '../../src/identity/certificates.ts';
import { Identity } from '../../src/identity/identity.ts';
import { clientContext } from '../../src/rpc/tls-dial.ts';
import { TlsRpcEndpoint } from '../../src/rpc/tls-endpoint.ts';
import type { NodeRef } from '../../src/rpc/types.ts';
import { SystemClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { PeerBook } from '../../src/whanausip/peer-book.ts';
import { SocialPeers } from '../../src/whanausip/social-peers.ts';

const certOf = (id: Identity) => createNodeCertificate({ privateKey: id.signingKey, publicKey: id.publicSigningKey });

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Seed 003 section 4.3: a social peer counts once we hold a key that hashes to its configured hash. */
describe('social peers: keys learned out of band, from an open link, or by one TLS handshake', () => {
  const me = Identity.generate();
  const friend = Identity.generate();
  const stranger = Identity.generate();
  let myCert: NodeCertificate;
  let friendEp: TlsRpcEndpoint;
  let nowhere = '';

  before(async () => {
    myCert = await certOf(me);
    friendEp = await TlsRpcEndpoint.listen({
      host: '127.0.0.1',
      port: 0,
      keyPair: { privateKey: friend.signingKey, publicKey: friend.publicSigningKey },
      certificate: await certOf(friend),
    });
    nowhere = `127.0.0.1:${await closedPort()}`;
  });
  after(async () => {
    await friendEp?.close();
  });

  /** Peers over a fresh book; `linkKeys` are the keys of links open now; `added` what reached the core. */
  function make(linkKeys: Uint8Array[] = []) {
    const added: NodeRef[] = [];
    const stats = { probesFailed: 0 };
    const book = new PeerBook(':memory:');
    const peers = new SocialPeers({
      book,
      node: { addPeer: (r: NodeRef) => void added.push(r) },
      endpoint: { openLinkKeys: () => linkKeys, limits: { connectTimeoutMs: 3000 } as TlsRpcEndpoint['limits'] },
      tlsContext: clientContext(myCert),
      clock: new SystemClock(),
      log: silentLogger,
      stats,
    });
    return { peers, added, stats, book };
  }

  it('a key given out of band that hashes to the hash is pinned at once, with no handshake', async () => {
    const { peers, added, stats, book } = make();
    assert.equal(await peers.add({ hash: friend.id, addr: nowhere }, friend.bundle.sig), true);
    assert.deepEqual(
      added.map((r) => [r.id, Buffer.from(r.key)]),
      [[friend.id, Buffer.from(friend.bundle.sig)]],
    );
    assert.equal(stats.probesFailed, 0);
    assert.deepEqual(
      peers.friends().map((r) => r.id),
      [friend.id],
    );
    book.close();
  });

  it('a key of another hash is not pinned, and a handshake where nothing answers counts as failed', async () => {
    const { peers, added, stats, book } = make();
    assert.equal(await peers.add({ hash: friend.id, addr: nowhere }, stranger.bundle.sig), false);
    assert.deepEqual(added, []);
    assert.equal(stats.probesFailed, 1);
    // In the book (it may answer later), but not a friend the core knows.
    assert.equal(peers.has(friend.id), true);
    assert.equal(peers.has(stranger.id), false);
    assert.deepEqual(peers.friends(), []);
    book.close();
  });

  it('a friend behind a NAT that keeps a link to us is known by that link, without dialling it', async () => {
    const { peers, added, stats, book } = make([stranger.bundle.sig, friend.bundle.sig]);
    book.upsert({ hash: friend.id, addr: nowhere }, Date.now());
    assert.equal(await peers.resolveAll(3000), 1);
    assert.deepEqual(
      added.map((r) => Buffer.from(r.key)),
      [Buffer.from(friend.bundle.sig)],
    );
    assert.equal(stats.probesFailed, 0);
    book.close();
  });

  it("one handshake shows the key at the peer's address; a key that is not the configured hash's is refused", async () => {
    const { peers, added, stats, book } = make();
    assert.equal(await peers.add({ hash: friend.id, addr: friendEp.self.addr }), true);
    assert.deepEqual(
      added.map((r) => Buffer.from(r.key)),
      [Buffer.from(friend.bundle.sig)],
    );
    // Someone configured as `stranger` at the friend's address: the key shown there does not hash to it.
    assert.equal(await peers.add({ hash: stranger.id, addr: friendEp.self.addr }), false);
    assert.equal(stats.probesFailed, 1);
    assert.deepEqual(
      peers.friends().map((r) => r.id),
      [friend.id],
    );
    book.close();
  });
});
