import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { runChordSim } from '../../src/sim/chord.ts';

const CLI = new URL('../../bin/secp2psip.mjs', import.meta.url).pathname;

describe('sim chord', () => {
  it('is deterministic: same seed, same result apart from wall-clock timings', async () => {
    const opts = { nodes: 60, lookups: 300, churn: 0.1, seed: 7, liars: 0.1, windowMs: 10_000 };
    const a = await runChordSim(opts);
    const b = await runChordSim(opts);
    const { timings: ta, ...ra } = a;
    const { timings: tb, ...rb } = b;
    assert.deepEqual(ra, rb);
    assert.ok(ta.totalMs >= 0 && tb.totalMs >= 0);
    assert.equal(a.wrong, 0);
    assert.equal(a.succeeded + a.failed + a.wrong, a.lookups);
    assert.ok(a.succeeded >= 0.9 * a.lookups, `succeeded ${a.succeeded}`);
    assert.equal(a.killed, 6);
    assert.equal(a.recordsLost, 0);
    const c = await runChordSim({ ...opts, seed: 8 });
    assert.notDeepEqual({ ...c, timings: 0 }, { ...a, timings: 0 });
  });

  it('prints one JSON object with --json and refuses bad arguments with one line and exit 2', () => {
    const ok = spawnSync(process.execPath, [CLI, 'sim', 'chord', '--nodes', '20', '--lookups', '50', '--json'], {
      encoding: 'utf8',
    });
    assert.equal(ok.status, 0, ok.stderr);
    const res = JSON.parse(ok.stdout);
    for (const k of ['nodes', 'lookups', 'succeeded', 'failed', 'wrong', 'meanHops', 'p99Hops', 'recordsLost'])
      assert.ok(k in res, k);
    assert.equal(res.wrong, 0);
    for (const bad of [
      ['--nodes', '20'],
      ['--nodes', 'ten', '--lookups', '5'],
      ['--nodes', '20', '--lookups', '5', '--churn', '2'],
      ['--nodes', '20', '--lookups', '5', '--what'],
    ]) {
      const r = spawnSync(process.execPath, [CLI, 'sim', 'chord', ...bad], { encoding: 'utf8' });
      assert.equal(r.status, 2, bad.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    }
  });
});
