import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqliteDeliveredLog } from '../../src/secp2psip/delivered-log.ts';
import { MAILBOX_SLOTS, MARK_SKEW_MS, mailboxKey, slotsFor } from '../../src/secp2psip/mailbox-records.ts';
import { sendIm } from '../../src/secp2psip/messaging.ts';
import { decodeUserCert } from '../../src/secp2psip/user-cert.ts';
import { RecordingInbox } from './recording-inbox.ts';
import { phoneMessage, SecTestnet } from './testnet.ts';

/**
 * Offline messages on the in-memory ring: stored sealed in the recipient's
 * mailbox when no phone of the recipient takes them or its adapter is down
 * (the sender's phone gets 202), collected in order at the next
 * registration, emptied with the owner's tombstone, never delivered twice.
 */
describe('offline messages in the ring (in-memory ring)', () => {
  let t: SecTestnet;
  const inboxes: RecordingInbox[] = [];
  before(async () => {
    t = await SecTestnet.create(5, {
      k: 3,
      n: 5,
      inbox: (i) => {
        inboxes[i] = new RecordingInbox();
        return inboxes[i];
      },
    });
    for (const [i, name] of ['alice', 'bob', 'carol', 'dave'].entries()) await t.settle(t.adapters[i].ensureUser(name));
  });
  after(() => t.close());

  const send = (from: number, sender: string, to: string, text: string) => {
    const a = t.adapters[from];
    const user = a.users.get(sender);
    assert.ok(user);
    return t.settle(sendIm(a.messaging, phoneMessage(sender, to, text), user, to));
  };

  it('every registered user holds a bootstrap-signed certificate for its keys', () => {
    const alice = t.adapters[0].users.get('alice');
    const c = decodeUserCert(alice?.cert);
    assert.ok(c.ok);
    assert.equal(c.value.bundle.name, 'alice');
    assert.deepEqual(c.value.bundle.signKey, alice?.bundle.signKey);
  });

  it('bob without a phone: stored sealed (202), delivered in order at his next registration, then emptied', async () => {
    inboxes[1].phones = 0;
    const texts = ['first', 'second', 'third'];
    for (const text of texts) {
      const out = await send(0, 'alice', 'bob', text);
      assert.ok(out.ok && out.stored, out.ok ? 'not stored' : out.reason);
      await t.run(5);
    }
    // What the holders have is sealed: no holder can read "second".
    for (const a of [...t.adapters, ...t.bootstraps])
      for (let s = 0; s < MAILBOX_SLOTS; s++) {
        const r = a.ring.store.get(mailboxKey('bob', s));
        if (r) assert.ok(!Buffer.from(r.value as Uint8Array).includes(Buffer.from('second')), 'plaintext in the ring');
      }
    inboxes[1].phones = 1;
    const got = await t.settle(t.adapters[1].mailbox.collect('bob'));
    assert.equal(got.delivered, 3);
    assert.deepEqual(
      inboxes[1].got.map((g) => [g.from, g.text]),
      texts.map((x) => ['alice', x]),
    );
    const again = await t.settle(t.adapters[1].mailbox.collect('bob'));
    assert.equal(again.delivered, 0, 'nothing delivered twice');
    // A phone that stays online and refreshes its registration does not make its adapter read the mailbox
    // each time; a phone coming online does.
    assert.equal(t.adapters[1].mailbox.collectIfDue('bob', false), undefined);
    assert.ok(t.adapters[1].mailbox.collectIfDue('bob', true));
    await t.run(2000);
    assert.equal(inboxes[1].got.length, 3);
    // The slots are free again: alice can store as many as before.
    inboxes[1].phones = 0;
    for (let i = 0; i < slotsFor('bob', 'alice').length; i++)
      assert.ok((await send(0, 'alice', 'bob', `again ${i}`)).ok);
    inboxes[1].phones = 1;
    assert.equal((await t.settle(t.adapters[1].mailbox.collect('bob'))).delivered, slotsFor('bob', 'alice').length);
  });

  it('an empty mailbox is checked with one key; a deposit during a collection is collected at the next', async () => {
    const d = t.adapters[3];
    inboxes[3].phones = 1;
    // dave's mailbox is empty: the check reads the mark key only, far fewer RPCs than every slot's replicas.
    const quick0 = d.mailbox.stats.quickChecks;
    const sent0 = d.endpoint.stats.requestsSent;
    assert.equal((await t.settle(d.mailbox.collect('dave'))).delivered, 0);
    assert.equal(d.mailbox.stats.quickChecks, quick0 + 1);
    const rpcs = d.endpoint.stats.requestsSent - sent0;
    assert.ok(rpcs < MAILBOX_SLOTS, `${rpcs} RPCs to look at an empty mailbox`);
    // A message stored after that check is found by the next one.
    inboxes[3].phones = 0;
    assert.ok((await send(0, 'alice', 'dave', 'after the check')).ok);
    inboxes[3].phones = 1;
    assert.equal((await t.settle(d.mailbox.collect('dave'))).delivered, 1);
    // A deposit racing a full collection (the mark of one deposit makes it read every slot; another deposit
    // lands meanwhile): whichever pass reads it, it is delivered, and nothing twice.
    inboxes[3].phones = 0;
    assert.ok((await send(0, 'alice', 'dave', 'racing one')).ok);
    inboxes[3].phones = 1;
    // dave's phone does not take carol's live MESSAGE, so it is stored while the collection runs.
    const inbox = inboxes[3];
    const deliver = inbox.deliver.bind(inbox);
    let sending = true;
    inbox.deliver = async (to, from, body, type) => {
      if (sending && new TextDecoder().decode(body) === 'racing two') return 0;
      return deliver(to, from, body, type);
    };
    const collecting = d.mailbox.collect('dave');
    const carol = t.adapters[2].users.get('carol');
    assert.ok(carol);
    const racing = sendIm(t.adapters[2].messaging, phoneMessage('carol', 'dave', 'racing two'), carol, 'dave').finally(
      () => {
        sending = false;
      },
    );
    const [, raced] = await t.settle(Promise.all([collecting, racing]));
    assert.ok(raced.ok && raced.stored, 'stored, not delivered live');
    await t.settle(d.mailbox.collect('dave'));
    await t.settle(d.mailbox.collect('dave'));
    const texts = inboxes[3].got.map((g) => g.text);
    assert.equal(texts.filter((x) => x === 'racing one').length, 1);
    assert.equal(texts.filter((x) => x === 'racing two').length, 1);
    // A mark younger than MARK_SKEW_MS (a depositor's clock may lag ours) keeps the slots read at every check;
    // once the marks are older than that, one more full pass answers them and the check is the quick one again.
    const quick1 = d.mailbox.stats.quickChecks;
    await t.settle(d.mailbox.collect('dave'));
    assert.equal(d.mailbox.stats.quickChecks, quick1);
    await t.run(MARK_SKEW_MS + 1000);
    await t.settle(d.mailbox.collect('dave'));
    await t.settle(d.mailbox.collect('dave'));
    assert.equal(d.mailbox.stats.quickChecks, quick1 + 1);
    assert.equal(inboxes[3].got.filter((g) => g.text.startsWith('racing')).length, 2, 'nothing twice');
  });

  it("carol's adapter down: stored; collected once it is back", async () => {
    const addr = t.adapters[2].endpoint.self.addr;
    t.net.kill(addr);
    const out = await send(0, 'alice', 'carol', 'while you were away');
    assert.ok(out.ok && out.stored, out.ok ? 'not stored' : out.reason);
    t.net.revive(addr);
    await t.run(3000);
    const got = await t.settle(t.adapters[2].mailbox.collect('carol'));
    assert.equal(got.delivered, 1);
    assert.deepEqual(inboxes[2].got.at(-1), {
      to: 'carol',
      from: 'alice',
      text: 'while you were away',
      type: 'text/plain;charset=UTF-8',
    });
  });

  it('a collection whose slots cannot be read (the ring settling) says it is incomplete; the next one delivers', async () => {
    const d = t.adapters[2];
    inboxes[2].phones = 0;
    const out = await send(0, 'alice', 'carol', 'read me later');
    assert.ok(out.ok && out.stored, out.ok ? 'not stored' : out.reason);
    await t.run(5);
    inboxes[2].phones = 1;
    const lookupMany = d.ring.lookupMany.bind(d.ring);
    d.ring.lookupMany = async (targets) =>
      targets.map(() => ({ ok: false, error: 'DHT_LOOKUP_FAILED', reason: 'settling', hops: 0, queries: 0 }));
    const blind = await t.settle(d.mailbox.collect('carol'));
    assert.deepEqual({ delivered: blind.delivered, incomplete: blind.incomplete }, { delivered: 0, incomplete: true });
    d.ring.lookupMany = lookupMany;
    const got = await t.settle(d.mailbox.collect('carol'));
    assert.equal(got.delivered, 1);
    assert.equal(got.incomplete, undefined);
    assert.equal(inboxes[2].got.at(-1)?.text, 'read me later');
  });

  it('a message already delivered (the adapter restarted before emptying its slot) is not delivered again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'secp2psip-delivered-'));
    try {
      const log = new SqliteDeliveredLog(join(dir, 'delivered.sqlite'));
      log.add(new Uint8Array(16).fill(3), Date.now());
      log.close();
      const reopened = new SqliteDeliveredLog(join(dir, 'delivered.sqlite'));
      assert.ok(reopened.has(new Uint8Array(16).fill(3)), 'kept across a restart');
      assert.ok(!reopened.has(new Uint8Array(16).fill(4)));
      reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // The same effect in the overlay: the stored copy of a message that was delivered live is skipped.
    inboxes[3].phones = 0;
    const out = await send(0, 'alice', 'dave', 'once only');
    assert.ok(out.ok && out.stored);
    const d = t.adapters[3];
    const slot = mailboxKey('dave', out.stored.slot);
    const rec = (await t.settle(d.ring.getReplicas([slot]))).get(slot)?.[0];
    assert.ok(rec);
    inboxes[3].phones = 1;
    const first = await t.settle(d.mailbox.collect('dave'));
    assert.equal(first.delivered, 1);
    // Put the deposit back as if the tombstone had never been written (a crash between the two).
    for (const a of [...t.adapters, ...t.bootstraps]) a.ring.store.delete(slot);
    for (const a of [...t.adapters, ...t.bootstraps]) a.ring.store.put(rec);
    const second = await t.settle(d.mailbox.collect('dave'));
    assert.equal(second.delivered, 0);
    assert.equal(inboxes[3].got.filter((g) => g.text === 'once only').length, 1);
  });
});
