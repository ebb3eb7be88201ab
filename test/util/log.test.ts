import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { logLevelOption, parseArgs } from '../../src/util/args.ts';
import { withUniqueKeys } from '../../src/util/log.ts';

function captured() {
  const lines: string[] = [];
  const root = withUniqueKeys(pino({ name: 'secp2psip', level: 'info' }, { write: (s: string) => lines.push(s) }));
  return { root, lines };
}

describe('logger', () => {
  it('writes each key once: a child naming a component under a command that named one replaces it', () => {
    const { root, lines } = captured();
    const cmd = root.child({ component: 'node' });
    const inner = cmd.child({ component: 'whanau-daemon', node: 'ab' });
    inner.info('setup done');
    inner.child({ node: 'cd', peer: 1 }).info('deeper');
    cmd.child({ other: true }).info('added');
    cmd.info('plain');
    for (const l of lines) {
      const keys = [...l.matchAll(/"([a-z]+)":/g)].map((m) => m[1]);
      assert.equal(new Set(keys).size, keys.length, `a key repeats in ${l}`);
    }
    const [a, b, c, d] = lines.map((l) => JSON.parse(l));
    assert.deepEqual([a.name, a.component, a.node], ['secp2psip', 'whanau-daemon', 'ab']);
    assert.deepEqual([b.component, b.node, b.peer], ['whanau-daemon', 'cd', 1]);
    assert.deepEqual([c.component, c.other], ['node', true]);
    assert.equal(d.component, 'node');
  });

  it('a child keeps its parent level when rebuilt', () => {
    const { root, lines } = captured();
    const cmd = root.child({ component: 'node' });
    cmd.level = 'warn';
    const inner = cmd.child({ component: 'chord' });
    inner.info('hidden');
    inner.warn('shown');
    assert.equal(lines.length, 1);
  });

  it('SECP2PSIP_LOG sets the level unless --log-level is given', () => {
    const spec = { 'log-level': { type: 'string', default: 'info' } } as const;
    const saved = process.env.SECP2PSIP_LOG;
    try {
      process.env.SECP2PSIP_LOG = 'debug';
      assert.equal(logLevelOption(parseArgs([], spec)), 'debug');
      assert.equal(logLevelOption(parseArgs(['--log-level', 'warn'], spec)), 'warn');
      process.env.SECP2PSIP_LOG = 'chatty';
      assert.throws(() => logLevelOption(parseArgs([], spec)), /SECP2PSIP_LOG must be one of/);
      delete process.env.SECP2PSIP_LOG;
      assert.equal(logLevelOption(parseArgs([], spec)), 'info');
    } finally {
      if (saved === undefined) delete process.env.SECP2PSIP_LOG;
      else process.env.SECP2PSIP_LOG = saved;
    }
  });
});
