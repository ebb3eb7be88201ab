/**
 * The systemd units under examples/systemd/: one per daemon, each with a
 * dedicated user, its state directory, restart on failure, reload by SIGHUP
 * and the hardening options; each passes `systemd-analyze verify` (with
 * ExecStart pointed at this checkout's binary in a temporary copy, since
 * /usr/local/bin/secp2psip need not exist here) without a single warning.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ROLES } from '../../src/cli/commands/config.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const UNITS = join(ROOT, 'examples/systemd');
const DAEMONS = ROLES.filter((r) => r !== 'demo');
const haveAnalyze = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { stdio: 'ignore' }).status === 0;

describe('systemd units', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'secp2psip-units-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('one unit per daemon, with a dedicated user, state directory, restart, SIGHUP reload and hardening', () => {
    const units = readdirSync(UNITS).filter((f) => f.endsWith('.service'));
    assert.deepEqual(units.sort(), DAEMONS.map((r) => `secp2psip-${r}.service`).sort());
    for (const role of DAEMONS) {
      const text = readFileSync(join(UNITS, `secp2psip-${role}.service`), 'utf8');
      for (const line of [
        'User=secp2psip',
        `StateDirectory=secp2psip/${role}`,
        'Restart=on-failure',
        'ExecReload=/bin/kill -HUP $MAINPID',
        'NoNewPrivileges=yes',
        'ProtectSystem=strict',
        'ProtectHome=yes',
        'PrivateTmp=yes',
        'CapabilityBoundingSet=',
      ])
        assert.ok(text.split('\n').includes(line), `secp2psip-${role}.service lacks ${line}`);
      assert.match(
        text,
        new RegExp(`^ExecStart=/usr/local/bin/secp2psip ${role} --config /etc/secp2psip/${role}\\.toml`, 'm'),
      );
    }
    assert.match(readFileSync(join(UNITS, 'secp2psip.sysusers.conf'), 'utf8'), /^u secp2psip - /m);
  });

  it('systemd-analyze verify accepts each unit without a warning', {
    skip: !haveAnalyze && 'systemd-analyze not installed',
  }, () => {
    const bin = join(ROOT, 'bin/secp2psip.mjs');
    for (const role of DAEMONS) {
      const name = `secp2psip-${role}.service`;
      const copy = join(tmp, name);
      writeFileSync(copy, readFileSync(join(UNITS, name), 'utf8').replaceAll('/usr/local/bin/secp2psip', bin));
      const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${name}: ${r.stderr}`);
      assert.equal(r.stderr.trim(), '', `${name}: ${r.stderr}`);
    }
    // The check can fail: a unit with a bad directive value is reported.
    const broken = join(tmp, 'secp2psip-broken.service');
    writeFileSync(
      broken,
      readFileSync(join(UNITS, 'secp2psip-node.service'), 'utf8')
        .replaceAll('/usr/local/bin/secp2psip', bin)
        .replace('Restart=on-failure', 'Restart=sometimes'),
    );
    assert.match(spawnSync('systemd-analyze', ['verify', broken], { encoding: 'utf8' }).stderr, /restart specifier/);
  });
});
