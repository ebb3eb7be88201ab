import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ChartSpec, escapeXml, linearTicks, logTicks, renderChart, tickLabel } from '../../bench/lib/svg.ts';

/** A small XML well-formedness check: balanced tags, quoted attributes, no stray '<' or '&'. */
function wellFormed(xml: string): string | null {
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<\?[^>]*\?>/g;
  let at = 0;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const text = xml.slice(at, m.index);
    if (text.includes('<') || /&(?!amp;|lt;|gt;|quot;|#\d+;)/.test(text)) return `bad text near ${at}`;
    at = m.index + m[0].length;
    if (!m[2]) continue;
    if (m[1]) {
      if (stack.pop() !== m[2]) return `unbalanced </${m[2]}>`;
    } else if (!m[4]) stack.push(m[2]);
  }
  if (xml.slice(at).trim() !== '') return 'trailing content';
  return stack.length === 0 ? null : `unclosed <${stack.join(', ')}>`;
}

const base: ChartSpec = {
  title: 'Call setup <ours> & seed',
  xLabel: 'running adapters',
  yLabel: 'ms',
  kind: 'line',
  yScale: 'log',
  series: [
    { name: 'ours p50', points: [0, 10, 20].map((x) => ({ x, y: 2 + x / 10, hi: 9 })) },
    {
      name: 'seed',
      seed: true,
      points: [
        { x: 0, y: 481.03 },
        { x: 20, y: 481.03 },
      ],
    },
  ],
  refLines: [{ y: 5000, label: 'goal 5 s' }],
};

describe('bench SVG writer', () => {
  it('the checker itself rejects broken XML', () => {
    assert.equal(wellFormed('<svg><g></svg>'), 'unbalanced </svg>');
    assert.equal(wellFormed('<svg><text>a < b</text></svg>'), 'bad text near 11');
    assert.equal(wellFormed('<svg x=1></svg>'), 'bad text near 0');
  });

  it('line charts on a log scale are well-formed and escape text', () => {
    const svg = renderChart(base);
    assert.equal(wellFormed(svg), null);
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
    assert.match(svg, /Call setup &lt;ours&gt; &amp; seed/);
    assert.equal((svg.match(/<circle /g) ?? []).length, 5, 'one marker per point');
    assert.match(svg, /stroke-dasharray="6 3"/, 'the seed series is dashed');
    assert.match(svg, />goal 5 s</);
  });

  it('bar charts draw one bar per present value, in category order, and skip non-positive values on log scale', () => {
    const svg = renderChart({
      ...base,
      kind: 'bar',
      categories: ['k=3 n=8', 'k=9 n=10'],
      series: [
        {
          name: 'seed',
          seed: true,
          points: [
            { x: 'k=3 n=8', y: 256.48 },
            { x: 'k=9 n=10', y: 678.79 },
          ],
        },
        {
          name: 'ours',
          points: [
            { x: 'k=3 n=8', y: 1.5, hi: 3 },
            { x: 'k=9 n=10', y: 0 },
          ],
        },
      ],
      refLines: [],
    });
    assert.equal(wellFormed(svg), null);
    assert.equal((svg.match(/<rect x=/g) ?? []).length, 3);
    assert.ok(svg.indexOf('>k=3 n=8<') < svg.indexOf('>k=9 n=10<'));
  });

  it('an empty chart is still a valid SVG', () => {
    assert.equal(wellFormed(renderChart({ ...base, series: [], refLines: [] })), null);
  });

  it('ticks', () => {
    assert.deepEqual(logTicks(1.5, 481), [1, 10, 100, 1000]);
    assert.deepEqual(logTicks(5, 5), [1, 10]);
    assert.deepEqual(linearTicks(0.8), [0, 0.2, 0.4, 0.6, 0.8]);
    assert.deepEqual(linearTicks(9), [0, 2, 4, 6, 8, 10]);
    assert.equal(tickLabel(10000), '10k');
    assert.equal(tickLabel(0.01), '0.01');
    assert.equal(escapeXml('"a"&<b>'), '&quot;a&quot;&amp;&lt;b&gt;');
  });
});
