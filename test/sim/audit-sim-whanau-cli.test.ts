/**
 * `secp2psip sim whanau ... --json` through the real command line (the
 * module-level tests call the simulator directly): every documented option
 * reaches the simulation, the JSON has the fields and they add up,
 * and the same seed prints the same bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../support/cli.ts';

const sim = (args: string[]) => runCli(['sim', 'whanau', ...args]);

describe('secp2psip sim whanau --json (command line)', { timeout: 120_000 }, () => {
  const args = [
    ...['--honest', '80', '--attack-edges', '4', '--sybils', '10', '--attack', 'cluster'],
    ...['--table', '40', '--layers', '2', '--lookups', '30', '--json'],
  ];

  it('one JSON line whose fields reflect the options and add up; same seed same bytes, another seed not', async () => {
    const [a, b, c] = await Promise.all([
      sim([...args, '--seed', '5']),
      sim([...args, '--seed', '5']),
      sim([...args, '--seed', '6']),
    ]);
    for (const r of [a, b, c]) assert.equal(r.code, 0, r.stderr);
    const lines = a.stdout.trim().split('\n');
    assert.equal(lines.length, 1, a.stdout);
    const j = JSON.parse(lines[0]);
    assert.equal(j.honest, 80);
    assert.equal(j.attackEdges, 4);
    assert.equal(j.sybils, 10);
    assert.equal(j.attack, 'cluster');
    assert.equal(j.seed, 5);
    assert.equal(j.params.l, 2);
    assert.deepEqual([j.params.rd, j.params.rf, j.params.rs], [40, 40, 40]);
    // Seed 003 Appendix A: r_d db entries, and per layer r_f fingers and r_s successor walks of t records each.
    assert.equal(j.tableEntries, j.params.rd + j.params.l * (j.params.rf + j.params.rs * j.params.t));
    assert.equal(j.lookups, 30);
    assert.equal(j.succeeded + j.failed, j.lookups);
    assert.ok(j.medianMessages >= 1 && j.medianMessages <= j.p99Messages, JSON.stringify(j));
    assert.equal(a.stdout, b.stdout, 'same seed, same result');
    assert.notEqual(a.stdout, c.stdout, 'another seed, another graph');
  });

  it('--attack none and drop are taken; no attack edges need no Sybils', async () => {
    const [none, drop] = await Promise.all([
      sim(['--honest', '60', '--attack-edges', '0', '--attack', 'none', '--lookups', '20', '--json', '--seed', '2']),
      sim(['--honest', '60', '--attack-edges', '3', '--sybils', '5', '--attack', 'drop', '--lookups', '20', '--json']),
    ]);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(drop.code, 0, drop.stderr);
    const n = JSON.parse(none.stdout);
    const d = JSON.parse(drop.stdout);
    assert.equal(n.attackEdges, 0);
    assert.equal(n.attack, 'none');
    assert.equal(n.succeeded, n.lookups, 'no attack: every lookup succeeds');
    assert.equal(d.attack, 'drop');
    assert.equal(d.attackEdges, 3);
  });
});
