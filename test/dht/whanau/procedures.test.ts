import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseFinger, successorsSample, tryProcedure } from '../../../src/dht/whanau/procedures.ts';
import { QueryTokens } from '../../../src/dht/whanau/query-token.ts';
import { arcRange, onArc } from '../../../src/dht/whanau/ring.ts';
import { SimClock } from '../../../src/util/clock.ts';
import { SeededRandom } from '../../../src/util/random.ts';

const view = (layers: number[][]) => ({
  layers: layers.map((ids) => ({ ids: [...ids].sort((a, b) => a - b), node: (j: number) => `n${j}` })),
});

describe('ring', () => {
  it('arcs wrap around the ring, both ends included', () => {
    const a = [0.1, 0.2, 0.5, 0.8, 0.9];
    assert.deepEqual(arcRange(a, 0.2, 0.8), { start: 1, count: 3 });
    assert.deepEqual(arcRange(a, 0.85, 0.15), { start: 4, count: 2 });
    assert.deepEqual(arcRange(a, 0.95, 0.05), { start: 0, count: 0 });
    assert.ok(onArc(0.9, 0.05, 0.1) && !onArc(0.9, 0.5, 0.1));
    assert.ok(onArc('ff', 'ff', '00') && onArc('10', '20', '30') && !onArc('10', '40', '30'));
  });

  it('SUCCESSORS-SAMPLE takes the t keys at or after x0, wrapping', () => {
    const db = [0.1, 0.3, 0.5, 0.7];
    assert.deepEqual(successorsSample(db, 0.3, 2), [1, 2]);
    assert.deepEqual(successorsSample(db, 0.6, 3), [3, 0, 1]);
    assert.deepEqual(successorsSample(db, 0.95, 9), [0, 1, 2, 3]);
  });
});

describe('TRY / CHOOSE-FINGER', () => {
  it('queries the finger closest before the key first, then widens the arc', () => {
    const v = view([[0.1, 0.3, 0.6, 0.62]]);
    const g = tryProcedure(v, 0.65, 3, new SeededRandom(1));
    const first = g.next();
    assert.equal(first.done, false);
    assert.deepEqual(!first.done && first.value, { kind: 'query', node: 'n3', layer: 0, key: 0.65 });
    // second attempt: arc [0.6, 0.65] holds n2 and n3
    const second = g.next(null);
    assert.ok(!second.done && ['n2', 'n3'].includes(second.value.node));
    const done = g.next('value');
    assert.deepEqual(done, { done: true, value: { value: 'value', messages: 2 } });
  });

  it('stops at the retry limit with "not found"', () => {
    const g = tryProcedure(view([[0.1, 0.2, 0.3, 0.4, 0.5]]), 0.45, 2, new SeededRandom(2));
    let r = g.next();
    let n = 0;
    while (!r.done) {
      n++;
      r = g.next(null);
    }
    assert.equal(n, 2);
    assert.deepEqual(r.value, { value: null, messages: 2 });
  });

  it('CHOOSE-FINGER picks among the layers that have a finger on the arc', () => {
    const v = view([[0.5], [0.55, 0.58], [0.9]]);
    const seen = new Set<number>();
    const rnd = new SeededRandom(3);
    for (let k = 0; k < 200; k++) seen.add(chooseFinger(v, 0.5, 0.6, rnd)?.layer ?? -1);
    assert.deepEqual([...seen].sort(), [0, 1]);
    assert.equal(chooseFinger(view([[0.9]]), 0.5, 0.6, rnd), undefined);
  });
});

describe('QueryTokens', () => {
  it('a token is good once, until it expires; forged ones never', () => {
    const clock = new SimClock();
    const t = new QueryTokens(clock, new SeededRandom(4), 1000);
    const a = t.mint();
    assert.equal(t.redeem(a), true);
    assert.equal(t.redeem(a), false);
    const b = t.mint();
    const forged = b.slice();
    forged[10] ^= 1;
    assert.equal(t.redeem(forged), false);
    const other = new QueryTokens(clock, new SeededRandom(5), 1000).mint();
    assert.equal(t.redeem(other), false);
    clock.advance(1001);
    assert.equal(t.redeem(b), false);
    assert.equal(t.redeem('junk'), false);
    assert.equal(t.redeem(new Uint8Array(3)), false);
  });
});
