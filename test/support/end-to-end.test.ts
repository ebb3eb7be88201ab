import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { endToEndFiles, isEndToEnd } from './end-to-end.ts';

describe('which tests are end-to-end (npm run test:e2e)', () => {
  it('a test named e2e-*, or one importing a helper that starts a process', () => {
    assert.ok(isEndToEnd('test/sip/e2e-new.test.ts', ''));
    assert.ok(isEndToEnd('test/secp2psip/a.test.ts', "import { startAdapterProc } from './procs.ts';"));
    assert.ok(isEndToEnd('test/cli/a.test.ts', "import { type CliRun, runCli } from '../support/cli.ts';"));
    assert.ok(isEndToEnd('test/sip/a.test.ts', "import { startLinphone } from '../support/linphone.ts';"));
    assert.ok(
      isEndToEnd('test/sip/a.test.ts', "import {\n  type Running,\n  startRegistrar,\n} from './e2e-helpers.ts';"),
    );
  });

  it('not a test that only borrows a free port, nor one running in memory', () => {
    assert.ok(!isEndToEnd('test/secp2psip/a.test.ts', "import { freePort } from '../sip/e2e-helpers.ts';"));
    assert.ok(
      !isEndToEnd('test/secp2psip/a.test.ts', "import { MemoryOverlay } from '../../src/harness/memory-overlay.ts';"),
    );
  });

  it('covers every e2e-* file of the tree, and the tests of real daemons', () => {
    const files = endToEndFiles(fileURLToPath(new URL('../..', import.meta.url)));
    for (const f of [
      'test/sip/e2e-baresip.test.ts',
      'test/sip/e2e-sipp.test.ts',
      'test/secp2psip/restart-processes.test.ts',
    ])
      assert.ok(files.includes(f), f);
    assert.ok(!files.includes('test/support/end-to-end.test.ts'));
  });
});
