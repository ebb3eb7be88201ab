/**
 * What instant messages, offline messages and presence cost, phone to phone
 * through adapters on loopback (TLS ring, UDP SIP, one bootstrap, k=3 n=5):
 *
 * - online delivery: from the sender phone's MESSAGE to its arrival at the
 *   recipient's phone (one way) and to the 200 back at the sender (round
 *   trip), with every message verifying the recipient and the sender through
 *   the ring (cache off, the seed's way) and with the adapters' default reuse
 *   of verified users (30 s);
 * - offline: a deposit (MESSAGE to 202, the message sealed and stored in the
 *   recipient's mailbox and read back) and a collection (the recipient's
 *   REGISTER to the arrival of its last stored message at its phone);
 * - presence: the presentity's REGISTER (or un-REGISTER) to the NOTIFY at the
 *   watcher's phone on another adapter.
 *
 *   node --import tsx bench/messaging.ts [--quick]
 *
 * Writes bench/results/messaging.json and prints a table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PER_SENDER_SLOTS } from '../src/secp2psip/mailbox-records.ts';
import { percentile } from '../src/util/stats.ts';
import { AnsweringPhone } from './lib/answering-phone.ts';
import { LoopbackOverlay, sipDest } from './lib/loopback-overlay.ts';

const quick = process.argv.includes('--quick');
const MESSAGES = quick ? 40 : 300;
const OFFLINE_ROUNDS = quick ? 3 : 12;
const PRESENCE_ROUNDS = quick ? 4 : 20;

interface Row {
  what: string;
  samples: number;
  p50Ms: number;
  p99Ms: number;
}

const row = (what: string, xs: number[]): Row => ({
  what,
  samples: xs.length,
  p50Ms: Number(percentile(xs, 50).toFixed(2)),
  p99Ms: Number(percentile(xs, 99).toFixed(2)),
});

const body = (r: { body: Uint8Array }) => Buffer.from(r.body).toString();

async function main(): Promise<void> {
  const overlay = await LoopbackOverlay.start({ k: 3, n: 5 });
  for (let i = 0; i < 4; i++) await overlay.addAdapter();
  await overlay.settle();
  const [A, B, C, D] = overlay.adapters.map(sipDest);
  const rows: Row[] = [];

  // -------------------------------------------------------------- online
  const alice = await AnsweringPhone.open();
  const bob = await AnsweringPhone.open();
  for (const [p, dest, name] of [
    [alice, A, 'alice'],
    [bob, B, 'bob'],
  ] as const)
    if ((await p.register(dest, name)).status !== 200) throw new Error(`${name} not registered`);
  for (const cache of [0, 30_000]) {
    for (const a of overlay.adapters) a.node.verified.cacheMs = cache;
    const oneWay: number[] = [];
    const roundTrip: number[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      const text = `m${cache}-${i}`;
      const arrived = bob.next((r) => r.method === 'MESSAGE' && body(r) === text);
      const ans = await alice.message(A, 'alice', 'bob', text);
      if (ans.status !== 200) throw new Error(`message ${i}: ${ans.status} ${ans.response.reason}`);
      oneWay.push((await arrived).at - ans.sentAt);
      roundTrip.push(ans.ms);
    }
    const how = cache ? 'verified users reused (default)' : 'every message verified through the ring';
    rows.push(row(`online, phone to phone (one way), ${how}`, oneWay));
    rows.push(row(`online, MESSAGE to 200 at the sender, ${how}`, roundTrip));
  }

  // -------------------------------------------------------------- offline
  for (const a of overlay.adapters) a.node.verified.cacheMs = 30_000;
  const carol = await AnsweringPhone.open();
  const deposit: number[] = [];
  const collect: number[] = [];
  if ((await carol.register(C, 'carol')).status !== 200) throw new Error('carol not registered');
  for (let round = 0; round < OFFLINE_ROUNDS; round++) {
    await carol.register(C, 'carol', 0);
    const texts = Array.from({ length: PER_SENDER_SLOTS }, (_, i) => `offline ${round}.${i}`);
    for (const text of texts) {
      const ans = await alice.message(A, 'alice', 'carol', text);
      if (ans.status !== 202) throw new Error(`offline message: ${ans.status} ${ans.response.reason}`);
      deposit.push(ans.ms);
    }
    const last = carol.next((r) => r.method === 'MESSAGE' && body(r) === texts[texts.length - 1], 30_000);
    const reg = await carol.register(C, 'carol');
    collect.push((await last).at - reg.sentAt);
    // Let the tombstones land before the next round deposits into the same slots.
    await new Promise((r) => setTimeout(r, 300));
  }
  rows.push(row('offline: deposit (MESSAGE to 202, sealed, stored, read back)', deposit));
  rows.push(row(`offline: collection of ${PER_SENDER_SLOTS} messages (REGISTER to the last at the phone)`, collect));

  // -------------------------------------------------------------- presence
  const dave = await AnsweringPhone.open();
  const erin = await AnsweringPhone.open();
  if ((await dave.register(D, 'dave')).status !== 200) throw new Error('dave not registered');
  if ((await erin.register(B, 'erin')).status !== 200) throw new Error('erin not registered');
  const sub = await dave.subscribe(D, 'dave', 'erin');
  if (sub.status !== 200) throw new Error(`SUBSCRIBE: ${sub.status}`);
  const notifyDelay: number[] = [];
  for (let i = 0; i < PRESENCE_ROUNDS; i++) {
    const open = i % 2 === 1;
    const seen = dave.next((r) => r.method === 'NOTIFY' && body(r).includes(`<basic>${open ? 'open' : 'closed'}`));
    const reg = await erin.register(B, 'erin', open ? 3600 : 0);
    notifyDelay.push((await seen).at - reg.sentAt);
  }
  rows.push(row("presence: presentity's REGISTER to the watcher's NOTIFY (another adapter)", notifyDelay));

  const result = { quick, k: 3, n: 5, adapters: overlay.adapters.length, rows };
  mkdirSync(join('bench', 'results'), { recursive: true });
  writeFileSync(join('bench', 'results', 'messaging.json'), `${JSON.stringify(result, null, 1)}\n`);
  process.stdout.write('| measurement | samples | p50 | p99 |\n| --- | --- | --- | --- |\n');
  for (const r of rows) process.stdout.write(`| ${r.what} | ${r.samples} | ${r.p50Ms} ms | ${r.p99Ms} ms |\n`);
  for (const p of [alice, bob, carol, dave, erin]) await p.close();
  await overlay.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
