/**
 * The store of lingering server transactions (transaction-lingering.ts) on its own, with the simulated clock: its
 * byte ring wraps round and grows, its slots grow with handles kept valid, and every entry gives back exactly the
 * bytes, destination and To tag it was given until its time is up.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Lingering } from '../../src/sip/transaction-lingering.ts';
import type { Peer } from '../../src/sip/transport.ts';
import { SimClock } from '../../src/util/clock.ts';

const bytesOf = (i: number): Buffer =>
  Buffer.from(`SIP/2.0 200 OK\r\nCSeq: ${i} REGISTER\r\n${'x'.repeat(i % 700)}\r\n\r\n`);

function resent(l: Lingering, key: string): { text: string; to: Peer } | undefined {
  const h = l.find(key);
  if (h < 0) return undefined;
  let out: { text: string; to: Peer } | undefined;
  l.resend(h, (b, to) => {
    out = { text: b.toString('latin1'), to };
  });
  return out;
}

describe('lingering transaction store', () => {
  it('keeps each entry as given through wrap-round and growth, and forgets it after its time', () => {
    const clock = new SimClock();
    const l = new Lingering(clock);
    const peers: Peer[] = [
      { transport: 'UDP', address: '192.0.2.7', port: 5060 },
      { transport: 'UDP', address: '2001:db8::1', port: 5062 },
      { transport: 'UDP', address: '10.0.0.255', port: 65535 },
    ];
    // A steady stream: 20 entries per simulated 10 ms over 6 s with a 1 s lifetime, so the byte ring wraps many
    // times; then a burst five times as dense, so both rings grow while entries are live.
    let n = 0;
    const live: number[] = [];
    const check = (): void => {
      for (const i of live.slice(-50)) {
        const r = resent(l, `k${i}`);
        assert.ok(r, `entry ${i} is live`);
        assert.equal(r.text, bytesOf(i).toString('latin1'));
        assert.deepEqual(r.to, peers[i % 3]);
      }
    };
    for (let t = 0; t < 600; t++) {
      const per = t >= 400 && t < 450 ? 100 : 20;
      for (let k = 0; k < per; k++, n++) {
        assert.equal(l.add(`k${n}`, bytesOf(n), peers[n % 3], undefined, 1000), true);
        live.push(n);
      }
      clock.advance(10);
      while (live.length > 0 && live.length > 0 && resent(l, `k${live[0]}`) === undefined) live.shift();
      check();
    }
    assert.equal(resent(l, 'k0'), undefined, 'long gone');
    clock.advance(1500);
    assert.equal(l.size, 0, 'every entry swept');
    assert.equal(clock.pending, 0);
  });

  it('keeps a To tag with or without response bytes, and only UDP destinations', () => {
    const clock = new SimClock();
    const l = new Lingering(clock);
    const to: Peer = { transport: 'UDP', address: '198.51.100.1', port: 5070 };
    assert.equal(l.add('invite', undefined, to, 'a1b2c3d4e5f60718', 5000), true);
    const h = l.find('invite');
    assert.ok(h >= 0);
    assert.equal(l.toTag(h), 'a1b2c3d4e5f60718');
    assert.equal(
      l.resend(h, () => assert.fail('no bytes to send')),
      false,
      'Confirmed keeps no response',
    );
    assert.equal(l.add('both', Buffer.from('SIP/2.0 486 Busy\r\n\r\n'), to, 'tag9', 32000), true);
    const hb = l.find('both');
    assert.equal(l.toTag(hb), 'tag9');
    assert.equal(resent(l, 'both')?.text, 'SIP/2.0 486 Busy\r\n\r\n');
    assert.equal(
      l.add(
        'tcp',
        Buffer.from('x'),
        { transport: 'TCP', address: '198.51.100.1', port: 5060, connId: 3 },
        undefined,
        32000,
      ),
      false,
    );
    assert.equal(l.find('tcp'), -1);
    assert.equal(
      l.add('odd-ip', Buffer.from('y'), { transport: 'UDP', address: '010.0.0.1', port: 1 }, undefined, 32000),
      true,
    );
    assert.equal(
      resent(l, 'odd-ip')?.to.address,
      '010.0.0.1',
      'an address that is not a plain dotted quad is kept as written',
    );
    clock.advance(5000);
    assert.equal(l.find('invite'), -1, 'Timer I ended it');
    assert.ok(l.find('both') >= 0);
  });
});
