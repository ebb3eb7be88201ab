import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type MessagingContext, sendIm } from '../../src/secp2psip/messaging.ts';
import { decodeMessage, encodeMessage, type SecP2PSipMessage } from '../../src/secp2psip/messages.ts';
import { RecordingInbox, tapRequests } from './recording-inbox.ts';
import { phoneMessage, SecTestnet } from './testnet.ts';

for (const mode of ['signed', 'protected'] as const)
  describe(`instant messages between adapters (in-memory ring, ${mode} mode)`, () => {
    let t: SecTestnet;
    const inboxes: RecordingInbox[] = [];
    before(async () => {
      t = await SecTestnet.create(4, {
        k: 3,
        n: 5,
        mode,
        inbox: (i) => {
          inboxes[i] = new RecordingInbox();
          return inboxes[i];
        },
      });
      await t.settle(t.adapters[0].ensureUser('alice'));
      await t.settle(t.adapters[1].ensureUser('bob'));
    });
    after(() => t.close());

    const send = (from: number, sender: string, to: string, text: string) => {
      const a = t.adapters[from];
      const user = a.users.get(sender);
      assert.ok(user);
      return t.settle(sendIm(a.messaging as MessagingContext, phoneMessage(sender, to, text), user, to));
    };

    it('delivers to the recipient phone with the verified sender, body and type; the sender learns it', async () => {
      const seen = tapRequests(t, 1);
      const out = await send(0, 'alice', 'bob', 'hello bob ✓');
      assert.ok(out.ok, out.ok ? '' : `${out.status} ${out.reason}`);
      assert.equal(out.delivered, 1);
      assert.deepEqual(inboxes[1].got.at(-1), {
        to: 'bob',
        from: 'alice',
        text: 'hello bob ✓',
        type: 'text/plain;charset=UTF-8',
      });
      assert.deepEqual(seen, [mode === 'protected' ? 'SEALED' : 'MESSAGE'], 'what travelled between the adapters');
      const back = await send(1, 'bob', 'alice', 'hi alice');
      assert.ok(back.ok);
      assert.equal(inboxes[0].got.at(-1)?.from, 'bob');
    });

    it('an unknown recipient is 404; one without a phone gets it stored (202), and nothing is delivered now', async () => {
      const before = inboxes[1].got.length;
      const unknown = await send(0, 'alice', 'nobody', 'hi');
      assert.ok(!unknown.ok);
      assert.equal(unknown.status, 404);
      inboxes[1].phones = 0;
      try {
        const away = await send(0, 'alice', 'bob', 'are you there?');
        assert.ok(away.ok && away.stored, away.ok ? 'delivered' : away.reason);
        assert.equal(away.delivered, 0);
      } finally {
        inboxes[1].phones = 1;
      }
      assert.equal(inboxes[1].got.length, before);
    });

    it('an adapter that is down: stored for later (or 480/408 without a mailbox), not a crash', async () => {
      await t.settle(t.adapters[3].ensureUser('dave'));
      t.net.kill(t.adapters[3].endpoint.self.addr);
      const out = await send(0, 'alice', 'dave', 'hi dave');
      assert.ok(out.ok && out.stored, out.ok ? 'delivered?' : `${out.status} ${out.reason}`);
      const bare = { ...t.adapters[0].messaging, mailbox: undefined };
      const alice = t.adapters[0].users.get('alice');
      assert.ok(alice);
      const refused = await t.settle(sendIm(bare, phoneMessage('alice', 'dave', 'hi'), alice, 'dave'));
      assert.ok(!refused.ok);
      assert.ok([480, 408].includes(refused.status), `${refused.status} ${refused.reason}`);
    });
  });

describe('instant message wire format', () => {
  it('MESSAGE, DELIVERED, WATCH and PRESENCE survive encode/decode; a truncated one decodes to an error', () => {
    for (const t of ['MESSAGE', 'DELIVERED', 'WATCH', 'PRESENCE'] as const) {
      const m = {
        t,
        name: 'alice',
        to: 'bob',
        callId: 'c1@x',
        nonce: new Uint8Array(16).fill(7),
        ts: 1_700_000_000_000,
        sip: new TextEncoder().encode('body'),
        sig: new Uint8Array(64).fill(1),
      } as SecP2PSipMessage;
      const bytes = encodeMessage(m);
      const d = decodeMessage(bytes);
      assert.ok(d.ok);
      assert.deepEqual(d.value, m);
      assert.equal(decodeMessage(bytes.slice(0, bytes.length - 3)).ok, false);
      const badName = decodeMessage(encodeMessage({ ...m, name: '.hidden' } as SecP2PSipMessage));
      assert.equal(badName.ok, false);
    }
  });
});
