import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { SybilRing, simulateChordSybils } from '../../src/sim/chord-sybil.ts';
import { simulateWhanau } from '../../src/sim/whanau.ts';

const CLI = new URL('../../bin/secp2psip.mjs', import.meta.url).pathname;

describe('sim chord --sybils', () => {
  it('without Sybils every lookup finds its record', async () => {
    const r = await simulateChordSybils({ nodes: 500, sybils: 0, placement: 'random', lookups: 300, seed: 2 });
    assert.equal(r.succeeded, 300);
    assert.equal(r.sybilOwner, 0);
    assert.ok(r.medianMessages >= 3 && r.medianMessages <= 12, String(r.medianMessages));
  });

  it('10 % Sybils next to the targets defeat Chord, while Whanau with the same Sybils behind G = n/10 attack edges holds', async () => {
    const chord = await simulateChordSybils({ nodes: 500, sybils: 50, placement: 'cluster', lookups: 300, seed: 3 });
    // Every replica of every target is a Sybil: no lookup can reach an honest holder.
    assert.equal(chord.succeeded, 0);
    assert.equal(chord.sybilOwner + chord.lookupFailed, 300);
    const dropped = await simulateChordSybils({
      nodes: 500,
      sybils: 50,
      placement: 'cluster',
      answer: 'drop',
      lookups: 100,
      seed: 3,
    });
    assert.equal(dropped.succeeded, 0);
    const whanau = simulateWhanau({
      honest: 500,
      sybils: 50,
      attackEdges: 50,
      attack: 'cluster',
      layers: 2,
      lookups: 300,
      seed: 3,
      progress: false,
    });
    assert.ok(whanau.successRate > 0.9, `whanau ${whanau.successRate}`);
    assert.ok(whanau.successRate - chord.successRate > 0.5);
  });

  it('random Sybil ids: dropping Sybils are routed around more often than colluding liars', async () => {
    const base = { nodes: 500, sybils: 50, placement: 'random' as const, lookups: 400, seed: 4 };
    const lie = await simulateChordSybils({ ...base, answer: 'lie' });
    const drop = await simulateChordSybils({ ...base, answer: 'drop' });
    assert.equal(drop.sybilOwner, 0);
    assert.ok(lie.sybilOwner > 0);
    assert.ok(drop.successRate > lie.successRate, `drop ${drop.successRate} lie ${lie.successRate}`);
    assert.ok(drop.successRate > 0.8 && drop.successRate < 1, String(drop.successRate));
  });

  it('honest nodes answer from the converged ring: the FIND of the key predecessor names the owner first', () => {
    const ids = ['10', '40', '80', 'c0'].map((p) => p.padEnd(40, '0'));
    const ring = new SybilRing(ids.slice(0, 3), ids.slice(3), 2, 'lie');
    const target = '50'.padEnd(40, '0');
    const rep = ring.honestFind(ring.rankOf(ids[1]), target);
    assert.deepEqual(
      rep.succs.map((r) => r.id),
      [ids[2], ids[3]],
    );
    assert.deepEqual(rep.next, []);
    assert.equal(ring.ownerRank(target), 2);
    // A lying Sybil claims the ring holds only Sybils; a dropping one never answers.
    assert.deepEqual(ring.neighbors(3)?.succs, []);
    assert.equal(new SybilRing(ids.slice(0, 3), ids.slice(3), 2, 'drop').find(3, target), null);
  });

  it('is deterministic: same seed, same result; another seed, another one', async () => {
    const opts = { nodes: 400, sybils: 40, placement: 'random' as const, lookups: 200, seed: 9 };
    const a = await simulateChordSybils(opts);
    assert.deepEqual(await simulateChordSybils(opts), a);
    assert.notDeepEqual(await simulateChordSybils({ ...opts, seed: 10 }), a);
  });

  it('through the CLI: one JSON line; bad arguments are one line on stderr and exit 2', () => {
    const run = (args: string[]) =>
      spawnSync(process.execPath, [CLI, 'sim', 'chord', ...args, '--quiet'], { encoding: 'utf8' });
    const ok = run(['--nodes', '200', '--sybils', '20', '--lookups', '50', '--json']);
    assert.equal(ok.status, 0, ok.stderr);
    const res = JSON.parse(ok.stdout);
    assert.equal(res.nodes, 200);
    assert.equal(res.sybils, 20);
    assert.equal(res.lookups, 50);
    for (const bad of [
      ['--sybils', '20'],
      ['--nodes', '200', '--sybils', 'x'],
      ['--nodes', '200', '--sybils', '20', '--placement', 'near'],
      ['--nodes', '200', '--sybils', '20', '--sybil-answer', 'maybe'],
      ['--nodes', '200', '--sybils', '20', '--churn', '0.1'],
      ['--nodes', '3', '--sybils', '1', '--replicas', '3'],
    ]) {
      const r = run(bad);
      assert.equal(r.status, 2, bad.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    }
  });
});
