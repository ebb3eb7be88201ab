import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { UserSigner } from '../../src/identity/user-key.ts';
import type { Caller, Payload } from '../../src/rpc/types.ts';
import { exchange } from '../../src/secp2psip/adapter-node.ts';
import { sendIm } from '../../src/secp2psip/messaging.ts';
import {
  callTbs,
  DOMAIN,
  type DeliveredMsg,
  decodeMessage,
  encodeMessage,
  type ImMsg,
} from '../../src/secp2psip/messages.ts';
import { serialize } from '../../src/sip/serializer.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { RecordingInbox } from './recording-inbox.ts';
import { phoneMessage, SecTestnet } from './testnet.ts';

/**
 * Attacks on instant messages between adapters: a forged sender, a MESSAGE
 * whose SIP From differs from its signer, a replayed MESSAGE (to the same
 * adapter and to another), and a forged delivery receipt. None may put a
 * message in front of a phone, or tell a sender it was delivered.
 */
function im(
  signer: { name: string; signer: UserSigner },
  claimed: string,
  to: string,
  text: string,
  now: number,
  ageMs = 0,
): ImMsg {
  const req = phoneMessage(claimed, to, text);
  const body: Omit<ImMsg, 'sig'> = {
    t: 'MESSAGE',
    name: claimed,
    to,
    callId: req.headers.find((h) => h.name === 'Call-ID')?.value as string,
    nonce: new Uint8Array(16).map(() => Math.floor(Math.random() * 256)),
    ts: now - ageMs,
    sip: new Uint8Array(serialize(req)),
  };
  return { ...body, sig: signer.signer.sign(DOMAIN.message, callTbs(body)) };
}

describe('instant message attacks (in-memory ring)', () => {
  let t: SecTestnet;
  const inboxes: RecordingInbox[] = [];
  before(async () => {
    t = await SecTestnet.create(4, {
      k: 3,
      n: 5,
      inbox: (i) => {
        inboxes[i] = new RecordingInbox();
        return inboxes[i];
      },
    });
    await t.settle(t.adapters[0].ensureUser('alice'));
    await t.settle(t.adapters[1].ensureUser('bob'));
    await t.settle(t.adapters[2].ensureUser('mallory'));
    await t.settle(t.adapters[3].ensureUser('carol'));
  });
  after(() => t.close());

  /** What bob's adapter answers a MESSAGE sent from mallory's adapter: 'DELIVERED' or the refusal code. */
  async function toAdapter(i: number, m: ImMsg): Promise<string> {
    try {
      const a = await t.settle(exchange(t.adapters[2].endpoint, t.adapters[i].endpoint.self, encodeMessage(m)));
      return a.t;
    } catch (e) {
      if (isOverlayError(e)) return e.code;
      throw e;
    }
  }

  it("a MESSAGE claiming to be alice's but signed with another key is refused and reaches no phone", async () => {
    const mallory = t.adapters[2].users.get('mallory');
    assert.ok(mallory);
    const before = inboxes[1].got.length;
    assert.equal(
      await toAdapter(1, im(mallory, 'alice', 'bob', 'send money', t.clock.wallNow())),
      'IDENTITY_BAD_SIGNATURE',
    );
    // A key made up for the occasion is no better.
    const stranger = { name: 'alice', signer: UserSigner.fromPrivateKey(generateKeyPairSync('ed25519').privateKey) };
    assert.equal(
      await toAdapter(1, im(stranger, 'alice', 'bob', 'send money', t.clock.wallNow())),
      'IDENTITY_BAD_SIGNATURE',
    );
    assert.equal(inboxes[1].got.length, before);
  });

  it('a MESSAGE signed by mallory whose SIP From names alice is refused before any ring look-up', async () => {
    const mallory = t.adapters[2].users.get('mallory');
    assert.ok(mallory);
    const m = im(mallory, 'alice', 'bob', 'it is me, alice', t.clock.wallNow());
    const signedAsMallory: Omit<ImMsg, 'sig'> = { ...m, name: 'mallory' };
    const forged: ImMsg = { ...signedAsMallory, sig: mallory.signer.sign(DOMAIN.message, callTbs(signedAsMallory)) };
    const lookups = t.adapters[1].ring.counters.lookups;
    assert.equal(await toAdapter(1, forged), 'VERIFICATION_FAILED');
    assert.equal(t.adapters[1].ring.counters.lookups, lookups);
  });

  it('a captured MESSAGE replayed is refused: delivered once; to another adapter or late, refused too', async () => {
    const alice = t.adapters[0].users.get('alice');
    assert.ok(alice);
    const before = inboxes[1].got.length;
    const m = im(alice, 'alice', 'bob', 'meet at noon', t.clock.wallNow());
    assert.equal(await toAdapter(1, m), 'DELIVERED');
    assert.equal(await toAdapter(1, m), 'IDENTITY_REPLAY');
    assert.equal(inboxes[1].got.length, before + 1, 'delivered exactly once');
    assert.equal(await toAdapter(3, m), 'USER_UNKNOWN', "carol's adapter does not deliver bob's message");
    const late = im(alice, 'alice', 'bob', 'meet at noon', t.clock.wallNow(), 120_000);
    assert.equal(await toAdapter(1, late), 'IDENTITY_STALE');
    assert.equal(inboxes[1].got.length, before + 1);
  });

  it("a DELIVERED not signed by bob (or for another message) does not make alice's phone get 200", async () => {
    const bob = t.adapters[1];
    const mallory = t.adapters[2].users.get('mallory');
    assert.ok(mallory);
    const orig = (bob as unknown as { onRequest(m: string, p: Payload, c: Caller): Payload }).onRequest.bind(bob);
    let forge: (d: DeliveredMsg) => DeliveredMsg = (d) => d;
    bob.endpoint.onRequest(async (method, p, c) => {
      const r = await orig(method, p, c);
      if (method !== 'secp2psip') return r;
      const d = decodeMessage(r);
      return d.ok && d.value.t === 'DELIVERED' ? encodeMessage(forge(d.value)) : r;
    });
    const alice = t.adapters[0].users.get('alice');
    assert.ok(alice);
    const send = () => t.settle(sendIm(t.adapters[0].messaging, phoneMessage('alice', 'bob', 'hi'), alice, 'bob'));
    forge = (d) => {
      const { sig: _, ...body } = d;
      return { ...body, sig: mallory.signer.sign(DOMAIN.delivered, callTbs(body)) };
    };
    const bad = await send();
    assert.ok(!bad.ok);
    assert.equal(bad.status, 403);
    forge = (d) => ({ ...d, nonce: new Uint8Array(16) });
    const other = await send();
    assert.ok(!other.ok);
    assert.equal(other.status, 403);
    forge = (d) => d;
    assert.ok((await send()).ok);
  });
});
