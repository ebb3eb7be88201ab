import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FailureDetector } from '../../../src/dht/chord/failure-detector.ts';
import { RememberedMembers } from '../../../src/dht/chord/remembered-members.ts';
import type { NodeRef } from '../../../src/rpc/types.ts';
import { SimClock } from '../../../src/util/clock.ts';
import { SeededRandom } from '../../../src/util/random.ts';

const ref = (id: string): NodeRef => ({ id, addr: `mem-${id}`, key: new Uint8Array(32) });

describe('FailureDetector', () => {
  it('counts a peer failed only after 3 misses in a row spanning the grace period', () => {
    const clock = new SimClock();
    const fd = new FailureDetector(clock, 3, 1000);
    assert.equal(fd.missed('a'), false);
    // Another peer answers meanwhile: our side of the network works.
    clock.advance(1);
    fd.alive('b');
    assert.equal(fd.missed('a'), false);
    assert.equal(fd.missed('a'), false, 'three quick misses are not enough');
    assert.ok(fd.suspected('a'));
    clock.advance(998);
    assert.equal(fd.failed('a'), false, 'not before the grace period is over');
    clock.advance(1);
    assert.ok(fd.failed('a'));
    assert.equal(fd.missed('a'), true);
  });

  it('any answer clears the suspicion', () => {
    const clock = new SimClock();
    const fd = new FailureDetector(clock, 3, 1000);
    fd.missed('a');
    fd.missed('a');
    clock.advance(2000);
    fd.alive('a');
    assert.equal(fd.suspected('a'), false);
    assert.equal(fd.missed('a'), false);
    assert.equal(fd.failed('a'), false);
  });

  it('when no peer answers at all, doubts itself: a silent peer fails only after five grace periods', () => {
    const clock = new SimClock();
    const fd = new FailureDetector(clock, 2, 1000);
    fd.missed('a');
    fd.missed('a');
    clock.advance(4999);
    assert.equal(fd.failed('a'), false);
    clock.advance(1);
    assert.ok(fd.failed('a'));
  });

  it('condemns a stale entry at once', () => {
    const fd = new FailureDetector(new SimClock(), 3, 1000);
    fd.condemn('a');
    assert.ok(fd.failed('a'));
  });

  it('lengthens the timeout when answers are slow, never shortens it below the configured one', () => {
    const fd = new FailureDetector(new SimClock(), 3, 1000);
    assert.equal(fd.timeoutMs(2000), 2000);
    for (let i = 0; i < 20; i++) fd.sample(10);
    assert.equal(fd.timeoutMs(2000), 2000);
    assert.equal(fd.timeoutMs(undefined), undefined);
    for (let i = 0; i < 20; i++) fd.sample(i % 2 === 0 ? 1500 : 3500);
    const t = fd.timeoutMs(2000) as number;
    assert.ok(t > 3500 && t <= 30_000, `timeout ${t}`);
    assert.ok((fd.timeoutMs(undefined) as number) > 5000);
  });
});

describe('RememberedMembers', () => {
  it('probes a lost member with doubling backoff up to the cap, and forgets it once found', () => {
    const m = new RememberedMembers(new SeededRandom(1), 1000, 8000);
    m.lost(ref('a'), 0);
    assert.deepEqual(m.due(999, 4), []);
    assert.deepEqual(
      m.due(1000, 4).map((r) => r.id),
      ['a'],
    );
    let now = 1000;
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      m.missed('a', now);
      let next = now;
      while (m.due(next, 4).length === 0) next += 50;
      waits.push(next - now);
      now = next;
    }
    assert.ok(waits[0] >= 1500 && waits[0] <= 2550, `first wait ${waits[0]}`);
    assert.ok(
      waits.slice(3).every((w) => w >= 6000 && w <= 10_050),
      `capped waits ${waits}`,
    );
    m.found('a', now);
    assert.equal(m.has('a'), false);
  });

  it('keeps anchors forever and bounds lost members, oldest forgotten first', () => {
    const m = new RememberedMembers(new SeededRandom(1), 1000, 8000, 3);
    m.anchor(ref('boot'), 0);
    for (const id of ['a', 'b', 'c', 'd']) m.lost(ref(id), 0);
    assert.equal(m.has('a'), false);
    assert.ok(m.has('b') && m.has('d') && m.has('boot'));
    m.found('boot', 0);
    m.drop('boot');
    assert.ok(m.has('boot'), 'an anchor stays after it answers');
  });

  it('when alone, every member not probed lately is due whatever its backoff', () => {
    const m = new RememberedMembers(new SeededRandom(1), 1000, 60_000);
    m.lost(ref('a'), 0);
    for (let i = 0; i < 5; i++) m.missed('a', 1000 * (i + 1));
    assert.deepEqual(m.due(7000, 4), []);
    assert.deepEqual(
      m.due(7000, 4, true).map((r) => r.id),
      ['a'],
    );
  });
});
