import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.ts';
import type { LocalUser } from '../../src/secp2psip/call-common.ts';
import {
  checkItem,
  decodeItem,
  encodeItem,
  itemTbs,
  MAILBOX_CONTEXT,
  MAILBOX_SLOTS,
  MAILBOX_TTL_MS,
  type MailboxItem,
  mailboxKey,
  markKey,
  PER_SENDER_SLOTS,
  slotsFor,
} from '../../src/secp2psip/mailbox-records.ts';
import { sendIm } from '../../src/secp2psip/messaging.ts';
import { issueUserCert } from '../../src/secp2psip/user-cert.ts';
import { RecordingInbox } from './recording-inbox.ts';
import { phoneMessage, SecTestnet } from './testnet.ts';

/**
 * Attacks on offline messages: holders that alter or drop stored messages, a
 * registered user who deposits beyond its quota or into another sender's
 * slots, a deposit with a certificate no bootstrap signed, and someone other
 * than the owner emptying a mailbox.
 */
describe('offline message attacks (in-memory ring)', () => {
  let t: SecTestnet;
  const inboxes: RecordingInbox[] = [];
  before(async () => {
    t = await SecTestnet.create(5, {
      k: 3,
      n: 5,
      inbox: (i) => {
        inboxes[i] = new RecordingInbox();
        inboxes[i].phones = 0;
        return inboxes[i];
      },
    });
    for (const [i, name] of ['alice', 'bob', 'mallory'].entries()) await t.settle(t.adapters[i].ensureUser(name));
  });
  after(() => t.close());

  const user = (i: number, name: string) => t.adapters[i].users.get(name) as LocalUser;
  const send = (from: number, sender: string, to: string, text: string) =>
    t.settle(sendIm(t.adapters[from].messaging, phoneMessage(sender, to, text), user(from, sender), to));
  /** The ring members (adapters and bootstraps) holding a copy of `key`. */
  const holders = (key: string) => [...t.adapters, ...t.bootstraps].filter((a) => a.ring.store.has(key));

  it('one holder altering and another dropping a stored message change nothing: bob gets it once, intact', async () => {
    const out = await send(0, 'alice', 'bob', 'the genuine text');
    assert.ok(out.ok && out.stored);
    const key = mailboxKey('bob', out.stored.slot);
    const hs = holders(key);
    assert.ok(hs.length >= 3, `replicated on ${hs.length} holders`);
    const altered = hs[0].ring.store.get(key);
    assert.ok(altered);
    const bytes = Buffer.from(altered.value as Uint8Array);
    bytes[bytes.length - 80] ^= 0xff; // inside the sealed box
    (altered as { value: Uint8Array }).value = new Uint8Array(bytes);
    hs[1].ring.store.delete(key);
    inboxes[1].phones = 1;
    const got = await t.settle(t.adapters[1].mailbox.collect('bob'));
    inboxes[1].phones = 0;
    assert.equal(got.delivered, 1);
    assert.deepEqual(
      inboxes[1].got.map((g) => g.text),
      ['the genuine text'],
    );
  });

  it('every holder altering a stored message: nothing bogus is delivered', async () => {
    const before = inboxes[1].got.length;
    const out = await send(0, 'alice', 'bob', 'will be mangled');
    assert.ok(out.ok && out.stored);
    const key = mailboxKey('bob', out.stored.slot);
    for (const a of holders(key)) {
      const r = a.ring.store.get(key);
      const d = decodeItem(r?.value);
      assert.ok(r && d.ok && d.value.box);
      const box = new Uint8Array(d.value.box);
      box[box.length - 1] ^= 1;
      (r as { value: Uint8Array }).value = encodeItem({ ...d.value, box });
    }
    inboxes[1].phones = 1;
    const got = await t.settle(t.adapters[1].mailbox.collect('bob'));
    inboxes[1].phones = 0;
    assert.equal(got.delivered, 0);
    assert.equal(inboxes[1].got.length, before);
  });

  it("mallory fills her share of bob's mailbox and no more; other slots and bad certificates are refused", async () => {
    const mine = slotsFor('bob', 'mallory');
    assert.equal(mine.length, PER_SENDER_SLOTS);
    for (let i = 0; i < PER_SENDER_SLOTS; i++) {
      const out = await send(2, 'mallory', 'bob', `spam ${i}`);
      assert.ok(out.ok && out.stored, out.ok ? 'not stored' : out.reason);
    }
    const over = await send(2, 'mallory', 'bob', 'one too many');
    assert.ok(!over.ok);
    assert.equal(over.status, 480);
    assert.match(over.reason, /holds no more messages from mallory/);
    // Alice's share is untouched by mallory's.
    assert.ok((await send(0, 'alice', 'bob', 'still room for me')).ok);

    // Holders refuse a deposit by mallory into a slot that is not hers, whatever she signs.
    const other = [...Array(MAILBOX_SLOTS).keys()].find((s) => !mine.includes(s)) as number;
    const m = user(2, 'mallory');
    const now = t.clock.wallNow();
    const forge = (slot: number, cert: Uint8Array, k: 'deposit' | 'tomb' = 'deposit') => {
      const key = mailboxKey('bob', slot);
      const body: Omit<MailboxItem, 'sig' | 'cert'> = {
        k,
        to: 'bob',
        slot,
        at: now,
        ttl: MAILBOX_TTL_MS,
        ...(k === 'deposit' ? { box: new Uint8Array(64) } : {}),
      };
      return { key, value: encodeItem({ ...body, cert, sig: m.signer.sign(MAILBOX_CONTEXT, itemTbs(key, body)) }) };
    };
    const keys = t.keys;
    const bad = forge(other, m.cert as Uint8Array);
    assert.match(checkItem(bad.key, bad.value, keys, now) ?? '', /is not mallory's/);
    const put = await t.settle(t.adapters[2].ring.put(bad.key, bad.value, MAILBOX_TTL_MS));
    assert.ok(!put.ok, 'the ring refuses it');
    // A certificate no bootstrap signed.
    const selfSigned = issueUserCert(Identity.generate(), m.bundle, now);
    assert.match(
      checkItem(forge(mine[0], selfSigned).key, forge(mine[0], selfSigned).value, keys, now) ?? '',
      /known bootstrap/,
    );
    // Emptying bob's mailbox is bob's alone.
    const tomb = forge(mine[0], m.cert as Uint8Array, 'tomb');
    assert.match(checkItem(tomb.key, tomb.value, keys, now) ?? '', /only the mailbox owner/);
    assert.ok(!(await t.settle(t.adapters[2].ring.put(tomb.key, tomb.value, MAILBOX_TTL_MS))).ok);
    // So is saying it was collected (a SEEN would hide the marks of new deposits); and a mark lives under the
    // mark key only.
    const onMarkKey = (k: 'mark' | 'seen', key = markKey('bob')) => {
      const body: Omit<MailboxItem, 'sig' | 'cert'> = { k, to: 'bob', slot: 0, at: now, ttl: MAILBOX_TTL_MS };
      const cert = m.cert as Uint8Array;
      return { key, value: encodeItem({ ...body, cert, sig: m.signer.sign(MAILBOX_CONTEXT, itemTbs(key, body)) }) };
    };
    const seen = onMarkKey('seen');
    assert.match(checkItem(seen.key, seen.value, keys, now) ?? '', /only the mailbox owner/);
    assert.ok(!(await t.settle(t.adapters[2].ring.put(seen.key, seen.value, MAILBOX_TTL_MS))).ok);
    assert.equal(checkItem(onMarkKey('mark').key, onMarkKey('mark').value, keys, now), null);
    const misplaced = onMarkKey('mark', mailboxKey('bob', 0));
    assert.match(checkItem(misplaced.key, misplaced.value, keys, now) ?? '', /under another key/);
  });
});
