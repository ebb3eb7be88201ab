import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LocalUser } from '../../src/secp2psip/call-common.ts';
import { exchange } from '../../src/secp2psip/adapter-node.ts';
import {
  callTbs,
  DOMAIN,
  encodeMessage,
  encodePresenceState,
  type PresenceMsg,
  type WatchMsg,
} from '../../src/secp2psip/messages.ts';
import type { Payload } from '../../src/rpc/types.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import {
  encodePresenceRecord,
  PRESENCE_RECORD_CONTEXT,
  PRESENCE_TTL_MS,
  presenceKey,
  presenceTbs,
} from '../../src/secp2psip/presence-records.ts';
import { RecordingPresence } from './recording-inbox.ts';
import { SecTestnet } from './testnet.ts';

/**
 * Attacks on presence: a PRESENCE claiming alice's state but signed by
 * mallory, a genuine PRESENCE replayed (to roll bob's view back), and a WATCH
 * in bob's name signed by mallory (to learn alice's changes as bob).
 */
describe('presence attacks (in-memory ring)', () => {
  let t: SecTestnet;
  const phones: RecordingPresence[] = [];
  before(async () => {
    t = await SecTestnet.create(3, {
      k: 3,
      n: 5,
      presencePhones: (i) => {
        phones[i] = new RecordingPresence();
        return phones[i];
      },
    });
    await t.settle(t.adapters[0].ensureUser('alice'));
    await t.settle(t.adapters[1].ensureUser('bob'));
    await t.settle(t.adapters[2].ensureUser('mallory'));
    phones[1].subs.add('bob>alice');
  });
  after(() => t.close());

  function signed<T extends PresenceMsg | WatchMsg>(by: LocalUser, body: Omit<T, 'sig'>, domain: string): T {
    return { ...body, sig: by.signer.sign(domain, callTbs(body)) } as T;
  }

  async function send(to: number, m: PresenceMsg | WatchMsg): Promise<string> {
    try {
      return (await t.settle(exchange(t.adapters[2].endpoint, t.adapters[to].endpoint.self, encodeMessage(m)))).t;
    } catch (e) {
      if (isOverlayError(e)) return e.code;
      throw e;
    }
  }

  const presence = (name: string, open: boolean, seq: number): Omit<PresenceMsg, 'sig'> => ({
    t: 'PRESENCE',
    name,
    to: 'bob',
    callId: 'x',
    nonce: new Uint8Array(16).map(() => Math.floor(Math.random() * 256)),
    ts: t.clock.wallNow(),
    sip: encodePresenceState({ open, seq }),
  });

  it("a PRESENCE for alice signed by mallory is refused and bob's phones hear nothing", async () => {
    const mallory = t.adapters[2].users.get('mallory') as LocalUser;
    const forged = signed<PresenceMsg>(mallory, presence('alice', true, Date.now() + 1e9), DOMAIN.presence);
    assert.equal(await send(1, forged), 'IDENTITY_BAD_SIGNATURE');
    assert.equal(phones[1].notified.length, 0);
  });

  it('a genuine PRESENCE replayed is refused, and an older genuine state never replaces a newer one', async () => {
    const alice = t.adapters[0].users.get('alice') as LocalUser;
    const newer = signed<PresenceMsg>(alice, presence('alice', true, 2000), DOMAIN.presence);
    const older = signed<PresenceMsg>(alice, presence('alice', false, 1000), DOMAIN.presence);
    assert.equal(await send(1, newer), 'DELIVERED');
    assert.equal(await send(1, newer), 'IDENTITY_REPLAY');
    assert.equal(await send(1, older), 'DELIVERED', 'accepted as a message...');
    assert.deepEqual(
      phones[1].notified.map((n) => n.state.open),
      [true],
      '...but the older state is not shown',
    );
  });

  it('a presence record for alice written by mallory is refused by every holder', async () => {
    const mallory = t.adapters[2].users.get('mallory') as LocalUser;
    const key = presenceKey('alice');
    const body = {
      name: 'alice',
      state: encodePresenceState({ open: true, note: 'free', seq: Date.now() * 2 }),
      at: t.clock.wallNow(),
      ttl: PRESENCE_TTL_MS,
    };
    const rec = encodePresenceRecord({
      ...body,
      cert: mallory.cert as Uint8Array,
      sig: mallory.signer.sign(PRESENCE_RECORD_CONTEXT, presenceTbs(key, body)),
    });
    const put = await t.settle(t.adapters[2].ring.put(key, rec, PRESENCE_TTL_MS));
    assert.ok(!put.ok);
    assert.match(put.reason ?? '', /only the user publishes/);
  });

  it("a WATCH in bob's name signed by mallory is refused: alice's adapter pushes nothing to mallory", async () => {
    const mallory = t.adapters[2].users.get('mallory') as LocalUser;
    const body: Omit<WatchMsg, 'sig'> = {
      t: 'WATCH',
      name: 'bob',
      to: 'alice',
      callId: 'w',
      nonce: new Uint8Array(16).fill(9),
      ts: t.clock.wallNow(),
      sip: new TextEncoder().encode('120'),
    };
    assert.equal(await send(0, signed<WatchMsg>(mallory, body, DOMAIN.watch)), 'IDENTITY_BAD_SIGNATURE');
    const got: string[] = [];
    const m2 = t.adapters[2];
    const orig = (m2 as unknown as { onRequest(m: string, p: Payload, c: unknown): Payload }).onRequest.bind(m2);
    m2.endpoint.onRequest((method, p, c) => {
      if (method === 'secp2psip') got.push('secp2psip');
      return orig(method, p, c);
    });
    t.adapters[0].presence.publish('alice', { note: 'secret meeting' }, 600);
    await t.run(3000);
    assert.deepEqual(got, [], 'nothing pushed to mallory');
  });
});
