import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startSweeping } from '../../src/sip/registrar-sweeper.ts';
import { SimClock } from '../../src/util/clock.ts';

describe('registrar sweeper', () => {
  it('sweeps once per period on the injected clock, and never after stop', () => {
    const clock = new SimClock();
    let sweeps = 0;
    const stop = startSweeping({ sweep: () => ++sweeps }, clock, 1000);
    clock.advance(999);
    assert.equal(sweeps, 0);
    clock.advance(1);
    assert.equal(sweeps, 1);
    clock.advance(3000);
    assert.equal(sweeps, 4);
    stop();
    clock.advance(10_000);
    assert.equal(sweeps, 4);
    assert.equal(clock.nextAt(), undefined, 'no timer left behind');
  });
});
