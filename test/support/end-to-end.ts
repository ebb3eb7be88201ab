/**
 * Which test files are end-to-end: `npm run test:e2e` runs exactly these
 * (`npm test` runs every file, these included).
 *
 * The rule: a test file is end-to-end when it runs the product or a phone as
 * a separate process, which it can only do through one of the helpers below
 * (each starts `bin/secp2psip.mjs`, baresip, linphonec, sipp or a network namespace),
 * or when its name starts with `e2e-`. Nothing to keep in a list: a new
 * test that uses these helpers is picked up by itself.
 *
 * Run directly, it prints the files one a line: `node --import tsx test/support/end-to-end.ts`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Helpers that start a real process, by the module that exports them. */
const PROCESS_HELPERS: ReadonlyArray<{ module: string; names?: RegExp }> = [
  { module: 'test/support/cli.ts' }, // runCli: the secp2psip command to its end
  { module: 'test/secp2psip/procs.ts' }, // bootstrap and adapter daemons
  { module: 'test/whanausip/cli-process.ts' }, // WhanauSIP node and gateway daemons
  { module: 'test/support/baresip.ts' }, // baresip phones
  { module: 'test/support/linphone.ts' }, // linphonec phones
  { module: 'test/support/testnet.ts' }, // hosts in network namespaces
  { module: 'test/sip/e2e-helpers.ts', names: /\b(startRegistrar|runProgram)\b/ }, // registrar daemon, sipp
];

const IMPORT = /^import\s+(?:type\s+)?([^;']*?)\s+from\s+'([^']+)'/gm;

/** True when the test at `path` (relative to the project root) runs a real process (see the module comment). */
export function isEndToEnd(path: string, source: string): boolean {
  if (basename(path).startsWith('e2e-')) return true;
  for (const m of source.matchAll(IMPORT)) {
    const [, names, from] = m;
    const module = posix.normalize(posix.join(posix.dirname(path), from));
    for (const h of PROCESS_HELPERS) {
      if (h.module !== module) continue;
      if (!h.names || h.names.test(names)) return true;
    }
  }
  return false;
}

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...testFiles(p));
    else if (e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** The end-to-end test files under `root/test`, relative to `root`, sorted. */
export function endToEndFiles(root: string): string[] {
  return testFiles(join(root, 'test'))
    .map((f) => relative(root, f).split(sep).join('/'))
    .filter((f) => isEndToEnd(f, readFileSync(join(root, f), 'utf8')))
    .sort();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  process.stdout.write(`${endToEndFiles(root).join('\n')}\n`);
}
