import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatValue,
  headlineRows,
  ratioCell,
  renderReadmeSection,
  renderReport,
  renderTable,
  withReadmeSection,
} from '../../bench/lib/markdown.ts';
import { type BenchResult, notMeasured, type Row, SCHEMA_VERSION, validateResult } from '../../bench/lib/schema.ts';
import { single, summarize } from '../../bench/lib/summary.ts';

const measured: Row = {
  measurement: 'call setup, signed, 50 adapters',
  unit: 'ms',
  seed: 481.03,
  ours: summarize([2, 4, 4, 5, 100]),
  status: 'measured',
};

function result(rows: Row[]): BenchResult {
  return {
    schema: SCHEMA_VERSION,
    date: '2026-01-02',
    command: 'npm run bench -- --quick',
    quick: true,
    machine: { cores: 2, cpu: 'Test CPU', node: 'v20.20.0', os: 'Linux 6', memoryGiB: 4, loadStart: 1.5 },
    notes: ['Machine shared with other work: numbers may be noisy.'],
    figures: [{ id: 'fig4', title: 'Figure 4', source: 'seed 000 VI.2', notes: ['N = other adapters'], rows }],
  };
}

describe('bench markdown writer', () => {
  it('formats values with their unit', () => {
    assert.equal(formatValue(481.03, 'ms'), '481 ms');
    assert.equal(formatValue(4.567, 'ms'), '4.57 ms');
    assert.equal(formatValue(0.0669, '%'), '0.067 %');
    assert.equal(formatValue(12345, '/s'), '12,345 /s');
    assert.equal(formatValue(Number.NaN, 'ms'), '—');
  });

  it('renders the five columns with seed value, p50, p99 and seed / ours ratio', () => {
    const t = renderTable([measured]).split('\n');
    assert.equal(t[0], "| measurement | seed's value | ours p50 | ours p99 | ratio (seed / ours) |");
    assert.equal(t[1], '| --- | --- | --- | --- | --- |');
    assert.equal(t[2], '| call setup, signed, 50 adapters | 481 ms | 4.00 ms | 100 ms | 120x |');
  });

  it('rates use ours / seed; single values have no p99; missing seed gives a dash', () => {
    const rate: Row = {
      measurement: 'lookups/s',
      unit: '/s',
      seed: 100,
      ours: single(400),
      status: 'measured',
      higherIsBetter: true,
    };
    assert.equal(ratioCell(rate), '4x');
    const line = renderTable([{ ...rate, seed: null }]).split('\n')[2];
    assert.equal(line, '| lookups/s | — | 400 /s | — | — |');
  });

  it('a row not measured says so and has no ratio', () => {
    const line = renderTable([notMeasured('registration/s', '/s', null, 'no bootstrap yet')]).split('\n')[2];
    assert.equal(line, '| registration/s | — | not measured yet | — | — |');
  });

  it('labels emulated rows and escapes pipes', () => {
    const r: Row = { ...measured, measurement: 'a | b', status: 'emulated' };
    assert.match(renderTable([r]), /\| a \\\| b \*\(emulated\)\* \|/);
  });

  it('the report starts with the machine and lists notes', () => {
    const md = renderReport(result([measured, notMeasured('x', 'ms', 1, 'why not')]));
    const lines = md.split('\n');
    assert.equal(lines[0], '# Benchmarks: secp2psip against the seeds');
    assert.match(lines[2], /^Machine: 2 cores \(Test CPU\), Node v20\.20\.0/);
    assert.match(md, /`npm run bench -- --quick`/);
    assert.match(md, /- x: why not/);
    assert.match(md, /- N = other adapters/);
  });
});

describe('bench result schema', () => {
  it('accepts a well-formed result and survives a JSON round trip', () => {
    const r = result([measured, notMeasured('x', 'ms', null, 'later')]);
    assert.deepEqual(validateResult(JSON.parse(JSON.stringify(r))), []);
  });

  it('finds inconsistent rows', () => {
    const bad = result([
      { ...measured, status: 'not measured yet' },
      { ...measured, ours: null },
      { ...measured, ours: { ...measured.ours!, p50: 1000 } },
    ]);
    const errs = validateResult(bad);
    assert.equal(errs.length, 3, errs.join('; '));
    assert.deepEqual(validateResult(null), ['not an object']);
    assert.ok(validateResult({ ...bad, schema: 99 }).some((e) => e.includes('schema')));
  });
});

describe('README section', () => {
  it('is appended once and replaced in place on the next run, leaving the rest intact', () => {
    const r = result([{ ...measured, params: { size: 50 } }]);
    const first = withReadmeSection('# title\n\ntext\n', renderReadmeSection(r));
    assert.ok(first.startsWith('# title\n\ntext\n\n<!-- bench:start'));
    assert.match(first, /## Benchmarks/);
    assert.match(first, /\| call setup, signed, 50 adapters \| 481 ms \| 4\.00 ms \| 100 ms \| 120x \|/);
    const again = withReadmeSection(`${first}\n## After\n`, renderReadmeSection({ ...r, date: '2026-02-03' }));
    assert.equal(again.match(/## Benchmarks/g)?.length, 1);
    assert.match(again, /2026-02-03/);
    assert.doesNotMatch(again, /2026-01-02/);
    assert.ok(again.endsWith('## After\n'));
  });

  it('headline rows keep Figure 4 at its largest ring only', () => {
    const small: Row = { ...measured, measurement: 'small', params: { size: 0 } };
    const big: Row = { ...measured, measurement: 'big', params: { size: 50 } };
    assert.deepEqual(
      headlineRows(result([small, big])).map((x) => x.measurement),
      ['big'],
    );
  });
});
