import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Admission, AdmissionControl } from '../../src/sip/admission.ts';
import { SipElement } from '../../src/sip/element.ts';
import { getHeader } from '../../src/sip/message.ts';
import { SimClock } from '../../src/util/clock.ts';
import { MemoryTransport, wire } from './helpers.ts';

/**
 * A simulated server on the simulated clock: requests arrive evenly and wait in a queue (the socket buffer) for
 * a single worker, which judges each when it takes it (as the transport does on reading a datagram) and spends
 * `costMs` on an admitted one, `refuseMs` on a refused one, `dropMs` on a dropped one. A request that waited more
 * than T1 (500 ms) has been retransmitted by its client: the worker also pays for that copy (answered from state)
 * and reports it, as the layer does. `offer` counts the verdicts per second of arrival.
 */
function server(costMs: number, refuseMs = costMs / 20, dropMs = costMs / 100) {
  const clock = new SimClock();
  let busy = 0;
  let free = 0;
  let nextArrival = 0;
  const ac = new AdmissionControl({ clock, busyMs: () => busy - Math.max(0, free - clock.now()) });
  const offer = (perS: number, seconds: number): Array<Record<Admission, number>> => {
    const out: Array<Record<Admission, number>> = [];
    const gap = 1000 / perS;
    for (let s = 0; s < seconds; s++) {
      const count: Record<Admission, number> = { admit: 0, reject: 0, drop: 0 };
      for (let i = 0; i < perS; i++) {
        const arrival = nextArrival;
        nextArrival += gap;
        const start = Math.max(arrival, free);
        clock.advance(start - clock.now());
        let cost = 0;
        if (start - arrival > 500) {
          ac.noteRetransmission();
          cost += refuseMs;
        }
        const v = ac.classify();
        count[v]++;
        cost += v === 'admit' ? costMs : v === 'reject' ? refuseMs : dropMs;
        free = start + cost;
        busy += cost;
      }
      out.push(count);
    }
    return out;
  };
  return { clock, ac, offer, backlog: () => free - nextArrival };
}

describe('admission control (overload, RFC 6357 / RFC 7339 motivation)', () => {
  it('below capacity admits everything and sets no limit', () => {
    // 1 ms per request: capacity 1,000/s; offered 500/s keeps the process half busy.
    const { ac, offer } = server(1);
    const secs = offer(500, 5);
    assert.ok(secs.every((c) => c.admit === 500 && c.reject === 0 && c.drop === 0));
    assert.equal(ac.rate, Number.POSITIVE_INFINITY);
    assert.equal(ac.stats.saturatedWindows, 0);
  });

  it('at 2x capacity admits close to capacity without going over, and answers the rest 503', () => {
    const { ac, offer } = server(1);
    const secs = offer(2000, 10);
    // After the first three seconds the admitted rate sits between 75 % and 100 % of capacity (1,000/s).
    for (const c of secs.slice(3)) {
      assert.ok(c.admit >= 750 && c.admit <= 1000, `admitted ${c.admit}/s`);
      assert.ok(c.reject > 0, 'some are refused with 503');
      assert.equal(c.admit + c.reject + c.drop, 2000);
    }
    assert.ok(ac.rate < 1000 && ac.rate > 500, `limit ${ac.rate}`);
  });

  it('at 4x capacity keeps admitting at least 70 % of capacity and answers the rest 503', () => {
    const { offer } = server(1);
    const secs = offer(4000, 10);
    // The first seconds drain what queued before the limit engaged.
    for (const c of secs.slice(4)) {
      assert.ok(c.admit >= 700 && c.admit <= 1000, `admitted ${c.admit}/s`);
      assert.ok(c.reject > 2000, `refused ${c.reject}/s with 503`);
    }
  });

  it('recovers within two seconds when the load drops back below capacity', () => {
    const { ac, offer } = server(1);
    offer(3000, 5);
    assert.ok(ac.rate < Number.POSITIVE_INFINITY);
    const after = offer(600, 3);
    // Within the first second after the drop the limit (~800/s) already passes everything but a few.
    assert.ok(after[0].admit >= 550, `admitted ${after[0].admit} of 600 in the first second`);
    assert.ok(after.slice(1).every((c) => c.admit === 600));
    assert.equal(ac.rate, Number.POSITIVE_INFINITY, 'the limit is lifted');
  });

  it('never limits below minRate however busy the process is', () => {
    const { ac, offer } = server(50);
    offer(1000, 3);
    assert.ok(ac.rate >= 50);
  });

  it('a process that is busy but not late (no retransmissions: starved of CPU, collecting garbage) sets no limit', () => {
    const clock = new SimClock();
    const ac = new AdmissionControl({ clock, busyMs: () => clock.now() });
    for (let i = 0; i < 3000; i++) {
      assert.equal(ac.classify(), 'admit');
      clock.advance(1);
    }
    assert.equal(ac.rate, Number.POSITIVE_INFINITY);
  });

  it('keeps the queue of work below T1 at 4x capacity', () => {
    const { offer, backlog } = server(1);
    offer(4000, 5);
    assert.ok(backlog() < 500, `backlog ${backlog()} ms`);
  });
});

describe('admission control in the transaction layer', () => {
  function element(busy: { ms: number }) {
    const clock = new SimClock();
    const transport = new MemoryTransport();
    const admission = new AdmissionControl({ clock, busyMs: () => busy.ms }, { minRate: 10, rejectShare: 0.5 });
    const el = new SipElement({ transport, clock }, { admission, tryingDelayMs: 200 });
    el.handle({
      onRequest: (inc) => {
        inc.respond(302, 'Moved Temporarily');
      },
    });
    return { clock, transport, admission };
  }

  it('a saturated process answers new INVITEs 503 with Retry-After and keeps no transaction for them', () => {
    const busy = { ms: 0 };
    const { clock, transport, admission } = element(busy);
    // Windows of 100 ms fully busy with 10 new requests each, every one retransmitted by its client (late): the
    // capacity estimate is about 100/s.
    for (let w = 0; w < 3; w++) {
      for (let i = 0; i < 10; i++) {
        const inv = wire('INVITE', { branch: `z9hG4bK-a${w}${i}`, callId: `c${w}${i}` });
        transport.inject(inv);
        transport.inject(inv);
      }
      busy.ms += 100;
      clock.advance(100);
    }
    for (let i = 10; i < 40; i++) {
      transport.inject(wire('INVITE', { branch: `z9hG4bK-b${i}`, callId: `d${i}` }));
      clock.advance(5);
    }
    assert.ok(admission.rate < Number.POSITIVE_INFINITY, `limit ${admission.rate} ${JSON.stringify(admission.stats)}`);
    const refused = transport.sent.filter((s) => s.msg.kind === 'response' && s.msg.status === 503);
    assert.ok(refused.length > 0, 'some INVITEs were refused');
    assert.equal(getHeader(refused[0].msg, 'Retry-After'), '1');
    // A 503 creates no server transaction: nothing is retransmitted on Timer G.
    const before = transport.sent.length;
    clock.advance(5000);
    const later = transport.sent.slice(before).filter((s) => s.msg.kind === 'response' && s.msg.status === 503);
    assert.equal(later.length, 0);
  });

  it('retransmissions of admitted transactions are answered from state even while shedding', () => {
    const busy = { ms: 0 };
    const { clock, transport, admission } = element(busy);
    transport.inject(wire('REGISTER', { branch: 'z9hG4bK-r0', callId: 'r0' }));
    for (let i = 1; i < 30; i++) {
      // Each new REGISTER and its retransmission: a busy process that is late.
      transport.inject(wire('REGISTER', { branch: `z9hG4bK-r${i}`, callId: `r${i}` }));
      transport.inject(wire('REGISTER', { branch: `z9hG4bK-r${i}`, callId: `r${i}` }));
      if (i % 10 === 9) {
        busy.ms += 100;
        clock.advance(100);
      }
    }
    for (let i = 30; i < 100; i++) transport.inject(wire('REGISTER', { branch: `z9hG4bK-r${i}`, callId: `r${i}` }));
    assert.ok(admission.stats.rejected + admission.stats.dropped > 0, 'new REGISTERs are being shed');
    transport.clear();
    transport.inject(wire('REGISTER', { branch: 'z9hG4bK-r0', callId: 'r0' }));
    assert.deepEqual(transport.statuses(), [302], 'the first REGISTER gets its response again');
  });
});

/**
 * The same simulated server reading from a kernel receive queue whose size admission control sets (boundQueue):
 * a request arriving at a full queue is dropped by the kernel at no cost to the process, and its client sends it
 * again 500 ms later (Timer A), once. `offer` counts per second of arrival what became of each request, and the
 * longest any request waited in the queue.
 */
function queuedServer(costMs: number, refuseMs = costMs / 3) {
  const clock = new SimClock();
  let busy = 0;
  let free = 0;
  let t = 0;
  const sizes: number[] = [];
  let room = Number.POSITIVE_INFINITY;
  const queue: number[] = [];
  const retries: number[] = [];
  const ac = new AdmissionControl({ clock, busyMs: () => busy - Math.max(0, free - clock.now()) });
  ac.boundQueue({
    setBytes: (b) => {
      sizes.push(b);
      room = Math.floor(b / 2048);
    },
  });
  type Second = Record<Admission | 'kernel', number> & { maxWaitMs: number };
  let second: Second = { admit: 0, reject: 0, drop: 0, kernel: 0, maxWaitMs: 0 };
  const work = (until: number): void => {
    while (queue.length > 0) {
      const start = Math.max(free, queue[0]);
      if (start > until) return;
      const arrival = queue.shift() as number;
      clock.advance(start - clock.now());
      const v = ac.classify();
      second[v]++;
      second.maxWaitMs = Math.max(second.maxWaitMs, start - arrival);
      const cost = v === 'admit' ? costMs : v === 'reject' ? refuseMs : costMs / 100;
      free = start + cost;
      busy += cost;
    }
  };
  const arrive = (at: number, retry: boolean): void => {
    work(at);
    if (queue.length >= room) {
      second.kernel++;
      if (!retry) retries.push(at + 500);
    } else queue.push(at);
  };
  const offer = (perS: number, seconds: number): Second[] => {
    const out: Second[] = [];
    for (let s = 0; s < seconds; s++) {
      second = { admit: 0, reject: 0, drop: 0, kernel: 0, maxWaitMs: 0 };
      for (let i = 0; i < perS; i++) {
        while (retries.length > 0 && retries[0] <= t) arrive(retries.shift() as number, true);
        arrive(t, false);
        t += 1000 / perS;
      }
      out.push(second);
    }
    return out;
  };
  return { ac, offer, sizes };
}

describe('admission control with a bounded receive queue', () => {
  it('below capacity leaves the queue at its full size', () => {
    const { ac, offer, sizes } = queuedServer(1);
    offer(500, 5);
    assert.deepEqual(sizes, [4 * 1024 * 1024]);
    assert.equal(ac.queueIsBounded, false);
  });

  it('at 2x capacity bounds the queue, serves at least 90 % of capacity, refuses few and drops nothing itself', () => {
    const { ac, offer, sizes } = queuedServer(1);
    const secs = offer(2000, 10);
    assert.equal(ac.queueIsBounded, true);
    // About 100 ms of work at 1,000/s, 2 KiB each.
    assert.ok(sizes[1] >= 64 * 1024 && sizes[1] <= 400 * 1024, `bounded to ${sizes[1]} bytes`);
    for (const c of secs.slice(2)) {
      assert.ok(c.admit >= 900, `served ${c.admit}/s`);
      assert.ok(c.reject <= 60, `refused ${c.reject}/s`);
      assert.equal(c.drop, 0);
      assert.ok(c.kernel > 0, 'the kernel sheds the excess');
      // Nothing read waited anywhere near T1, so no client retransmits a request already taken.
      assert.ok(c.maxWaitMs < 300, `waited ${c.maxWaitMs} ms`);
    }
  });

  it('at 4x capacity still serves at least 90 % of capacity', () => {
    const { offer } = queuedServer(1);
    for (const c of offer(4000, 10).slice(2)) assert.ok(c.admit >= 900, `served ${c.admit}/s`);
  });

  it('gives the queue back its size within two seconds when the load drops', () => {
    const { ac, offer, sizes } = queuedServer(1);
    offer(3000, 5);
    assert.equal(ac.queueIsBounded, true);
    const after = offer(600, 3);
    assert.ok(after.slice(1).every((c) => c.admit >= 600 && c.reject === 0));
    assert.equal(ac.queueIsBounded, false);
    assert.equal(sizes[sizes.length - 1], 4 * 1024 * 1024);
  });
});
