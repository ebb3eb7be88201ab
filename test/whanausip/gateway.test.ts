import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { whanauHandler } from '../../src/dht/whanau/dispatch.ts';
import { WhanauNode } from '../../src/dht/whanau/node.ts';
import { defaultParams } from '../../src/dht/whanau/params.ts';
import { TlsRpcEndpoint } from '../../src/rpc/tls-endpoint.ts';
import { SystemClock } from '../../src/util/clock.ts';
import { CryptoRandom } from '../../src/util/random.ts';
import { type RunningWhanauSip, startWhanauSip } from '../../src/whanausip/daemon.ts';
import {
  ed25519Signer,
  encodeLocationRecord,
  recordKey,
  signLocationRecord,
} from '../../src/whanausip/location-record.ts';
import { sipRequest } from './sip-probe.ts';

/**
 * The WhanauSIP gateway of seed 003 section 4.7 and a node of section 3.4.3 on real sockets: five honest
 * members over TLS plus one attacker joined by two attack edges, which serves forged and expired records for
 * identities that are not online. SIP requests come from a plain UDP socket.
 */
describe('WhanauSIP gateway and node over real sockets', { timeout: 300_000 }, () => {
  // t = 8: in six nodes the db samples repeat keys, so a short successor window would cover too few of them.
  const params = defaultParams(6, { periodMs: 3600_000, rd: 12, rf: 8, rs: 8, t: 8, rpcTimeoutMs: 20_000 });
  const limits = { connectTimeoutMs: 15_000, handshakeTimeoutMs: 15_000, requestTimeoutMs: 20_000 };
  const running: RunningWhanauSip[] = [];
  let attackerEp: TlsRpcEndpoint;
  let attacker: WhanauNode;
  const forgedKey: { hash: string; value: Uint8Array } = { hash: '', value: new Uint8Array() };
  const expiredKey: { hash: string; value: Uint8Array } = { hash: '', value: new Uint8Array() };
  const gw = () => running[0];

  async function setupAll(epoch: number): Promise<void> {
    await Promise.all([...running.map((r) => r.daemon.setup(epoch)), attacker.setup(epoch)]);
  }

  before(async () => {
    for (let i = 0; i < 5; i++)
      running.push(
        await startWhanauSip({
          openRegistration: true,
          role: i === 0 ? 'gateway' : 'node',
          sipHost: '127.0.0.1',
          sipPort: 0,
          dhtHost: '127.0.0.1',
          dhtPort: 0,
          params,
          limits,
          schedule: false,
        }),
      );
    // Records an attacker would like callers to follow: one altered after signing, one long expired.
    const victim = ed25519Signer();
    const signed = signLocationRecord(
      { value: 'sip:v@127.0.0.1:5999', created: Date.now(), ttl: 3600, host: '127.0.0.1', port: 5999 },
      victim,
    );
    forgedKey.hash = recordKey(victim.publicKey);
    forgedKey.value = encodeLocationRecord({ ...signed, value: `sip:${forgedKey.hash}@203.0.113.66:5060` });
    const stale = ed25519Signer();
    expiredKey.hash = recordKey(stale.publicKey);
    expiredKey.value = encodeLocationRecord(
      signLocationRecord(
        { value: 'sip:w@203.0.113.66:5060', created: Date.now() - 7200_000, ttl: 60, host: '127.0.0.1', port: 1 },
        stale,
      ),
    );
    // The attacker runs a Whanau node that accepts anything and answers with the bad records wherever it can.
    attackerEp = await TlsRpcEndpoint.listen({ keyPair: generateKeyPairSync('ed25519'), limits });
    attacker = new WhanauNode(
      { clock: new SystemClock(), random: new CryptoRandom(), transport: attackerEp },
      { self: attackerEp.self, params, checker: { check: () => true } },
    );
    attacker.publish({ key: forgedKey.hash, value: forgedKey.value });
    attacker.publish({ key: expiredKey.hash, value: expiredKey.value });
    const honest = whanauHandler(attacker);
    const bad = new Map([
      [forgedKey.hash, forgedKey.value],
      [expiredKey.hash, expiredKey.value],
    ]);
    attackerEp.onRequest(async (method, payload, caller) => {
      const key = (payload as { key?: string }).key;
      if ((method === 'whanau.query' || method === 'whanau.try') && key && bad.has(key))
        return { value: bad.get(key), messages: 1 };
      return honest(method, payload, caller);
    });
    // Honest ring 0-1-2-3-4-0 plus chords 0-2 and 1-3; attack edges 0-A and 2-A.
    const link = async (a: RunningWhanauSip, b: RunningWhanauSip) => {
      await a.daemon.addPeer({ hash: b.daemon.hash, addr: b.daemon.self.addr });
      await b.daemon.addPeer({ hash: a.daemon.hash, addr: a.daemon.self.addr });
    };
    for (const [a, b] of [
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 4],
      [4, 0],
      [0, 2],
      [1, 3],
    ])
      await link(running[a], running[b]);
    for (const i of [0, 2]) {
      await running[i].daemon.addPeer({ hash: attackerEp.self.id, addr: attackerEp.self.addr });
      attacker.addPeer(running[i].daemon.self);
    }
    await setupAll(running[0].daemon.node.nextEpoch());
  });

  after(async () => {
    await Promise.all(running.map((r) => r.close()));
    await attackerEp?.close();
  });

  const sipPort = (r: RunningWhanauSip) => Number(r.sip.element.hostport.split(':')[1]);
  const gwUri = (user: string) => `sip:${user}@${gw().sip.element.hostport}`;

  it('OPTIONS is answered 200 with the methods the gateway allows', async () => {
    const a = await sipRequest(sipPort(gw()), 'OPTIONS', gwUri('ping'));
    assert.equal(a.status, 200);
    assert.match(a.response.headers.find((h) => h.name === 'Allow')?.value ?? '', /INVITE/);
  });

  it("INVITE to sip:<hash>@gateway is redirected (302) to the contact in that node's verified record", async () => {
    for (const target of running.slice(1)) {
      const a = await sipRequest(sipPort(gw()), 'INVITE', gwUri(target.daemon.hash.toUpperCase()));
      assert.equal(a.status, 302, `${target.daemon.hash}: ${a.status} ${a.reason}`);
      assert.deepEqual(a.contacts, [`<${target.uri}>`]);
    }
  });

  it('a user part that is not a key hash gets 400; an unknown key 404', async () => {
    assert.equal((await sipRequest(sipPort(gw()), 'INVITE', gwUri('alice'))).status, 400);
    assert.equal((await sipRequest(sipPort(gw()), 'INVITE', gwUri('a'.repeat(39)))).status, 400);
    assert.equal((await sipRequest(sipPort(gw()), 'INVITE', gwUri('0'.repeat(40)))).status, 404);
  });

  it('forged and expired records are dropped: no 302 for them', async () => {
    for (const k of [forgedKey, expiredKey]) {
      const a = await sipRequest(sipPort(gw()), 'INVITE', gwUri(k.hash));
      assert.equal(a.status, 404, `${a.status} ${a.reason} ${a.contacts}`);
    }
    const dropped = running.reduce((s, r) => s + r.daemon.node.stats.invalidRecordsDropped, 0);
    assert.ok(dropped > 0, 'honest nodes met the bad records and dropped them');
  });

  it('REGISTER: refused by the gateway, and by a node for any identity but its own', async () => {
    const node = running[1];
    const port = sipPort(node);
    assert.equal(
      (await sipRequest(sipPort(gw()), 'REGISTER', `sip:${gw().sip.element.hostport}`, { to: gwUri(node.daemon.hash) }))
        .status,
      405,
    );
    const other = `sip:${running[2].daemon.hash}@${node.sip.element.hostport}`;
    const refused = await sipRequest(port, 'REGISTER', `sip:${node.sip.element.hostport}`, { to: other });
    assert.equal(refused.status, 403);
  });

  it("a phone registered as the node's hash is published and reached through the gateway after SETUP", async () => {
    const node = running[3];
    const reg = await sipRequest(sipPort(node), 'REGISTER', `sip:${node.sip.element.hostport}`, {
      to: node.uri,
    });
    assert.equal(reg.status, 200);
    const phone = /<(sip:probe@127\.0\.0\.1:\d+)>/.exec(reg.contacts[0] ?? '')?.[1];
    assert.ok(phone, `binding in ${reg.contacts}`);
    assert.equal(node.daemon.contact(), phone);
    // The node itself sends INVITEs for its own identity to the phone at once.
    const direct = await sipRequest(sipPort(node), 'INVITE', node.uri);
    assert.equal(direct.status, 302);
    assert.match(direct.contacts[0], new RegExp(`^<${phone}>`));
    // Other nodes copy the new record at the next SETUP.
    await setupAll(running[0].daemon.node.nextEpoch() + 1);
    const a = await sipRequest(sipPort(gw()), 'INVITE', gwUri(node.daemon.hash));
    assert.equal(a.status, 302);
    assert.deepEqual(a.contacts, [`<${phone}>`]);
  });
});
