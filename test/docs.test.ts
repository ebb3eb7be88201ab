/**
 * Keeps the user's guide honest: every command and option the README (and
 * docs/) shows exists, every option a command's `--help` lists is in the
 * README's Configure tables, every `npm run X` is a script, every source path
 * named exists, and the README still opens with its two command lines.
 * The help texts come from the commands themselves, in this process.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { COMMANDS, type Command } from '../src/cli/main.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const DOCS = readdirSync(join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => ({ name: `docs/${f}`, text: readFileSync(join(ROOT, 'docs', f), 'utf8') }));
const PAGES = [{ name: 'README.md', text: README }, ...DOCS];
const SCRIPTS = Object.keys(
  (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts,
);

/** What `secp2psip <argv>` prints on stdout, run in this process. */
async function helpOf(argv: string[]): Promise<string> {
  const mod = (await import(`../src/cli/commands/${argv[0]}.ts`)) as Command;
  const write = process.stdout.write;
  let out = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  try {
    await mod.run(argv.slice(1));
  } finally {
    process.stdout.write = write;
  }
  return out;
}

/** The code of a page: fenced blocks and inline spans, with shell line continuations joined. */
function codeOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/```[^\n]*\n([\s\S]*?)```/g)) out.push(...m[1].replace(/\\\n\s*/g, ' ').split('\n'));
  const prose = text.replace(/```[^\n]*\n[\s\S]*?```/g, '');
  for (const m of prose.matchAll(/`([^`\n]+)`/g)) out.push(m[1]);
  return out;
}

const optionsIn = (s: string) => new Set([...s.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]));

const help = new Map<string, string>();
before(async () => {
  for (const name of Object.keys(COMMANDS))
    help.set(
      name,
      name === 'sim'
        ? (await helpOf(['sim', '--help'])) + (await helpOf(['sim', 'whanau', '--help']))
        : await helpOf([name, '--help']),
    );
});

describe('README and docs', () => {
  it('the README opens with the two command lines, and their scripts exist', () => {
    const first = README.match(/```sh\n([\s\S]*?)```/)?.[1] ?? '';
    assert.ok(README.indexOf('```sh') < README.indexOf('\n## '), 'the command lines come before the first section');
    assert.match(first, /^npm ci && npm start\s+# /m);
    assert.match(first, /^npm ci && npm test\s+# /m);
    assert.ok(SCRIPTS.includes('start') && SCRIPTS.includes('test'));
  });

  it('every secp2psip command and option shown exists in that command`s --help', () => {
    for (const page of PAGES)
      for (const line of codeOf(page.text)) {
        for (const m of line.matchAll(/(?:^|[\s`(])secp2psip(?:\.mjs)?\s+([a-z][\w-]*)((?:[^|;&#]*)?)/g)) {
          const [, cmd, rest] = m;
          assert.ok(Object.hasOwn(COMMANDS, cmd), `${page.name}: 'secp2psip ${cmd}' is not a command (${line})`);
          const known = optionsIn(help.get(cmd) ?? '');
          for (const o of optionsIn(rest))
            assert.ok(known.has(o) || o === 'help', `${page.name}: 'secp2psip ${cmd} --${o}' is not an option`);
        }
      }
  });

  it('the Configure tables list exactly the options of each command`s --help', () => {
    const configure = README.slice(
      README.indexOf('\n## Configure'),
      README.indexOf('\n## ', README.indexOf('\n## Configure') + 1),
    );
    for (const section of configure.split('\n### ').slice(1)) {
      const cmds = [...(section.split('\n')[0] ?? '').matchAll(/secp2psip (\w+)/g)].map((m) => m[1]);
      if (cmds.length === 0 || cmds.includes('sim')) continue;
      const rows = section.split('\n').filter((l) => l.startsWith('| `--'));
      const documented = new Set(rows.flatMap((r) => [...optionsIn(r.split('|')[1] ?? '')]));
      for (const cmd of cmds) {
        const listed = [...optionsIn(help.get(cmd) ?? '')].filter((o) => o !== 'help');
        for (const o of listed)
          assert.ok(documented.has(o), `README Configure: --${o} of 'secp2psip ${cmd}' is missing`);
        for (const o of documented) assert.ok(listed.includes(o), `README Configure: 'secp2psip ${cmd}' has no --${o}`);
      }
    }
  });

  it('every npm script named is in package.json', () => {
    for (const page of PAGES)
      for (const line of codeOf(page.text)) {
        for (const m of line.matchAll(/\bnpm run ([\w:-]+)/g))
          assert.ok(SCRIPTS.includes(m[1]), `${page.name}: 'npm run ${m[1]}' is not a script`);
        for (const m of line.matchAll(/\bnpm (start|test)\b/g))
          assert.ok(SCRIPTS.includes(m[1]), `${page.name}: 'npm ${m[1]}' has no script`);
      }
  });

  it('every source, test, benchmark and docs path named exists', () => {
    for (const page of PAGES)
      for (const line of codeOf(page.text)) {
        for (const m of line.matchAll(/(?:^|[\s(])((?:src|test|bench|docs)\/[\w./-]+\.(?:ts|mjs|md|svg))\b/g)) {
          const path = m[1];
          assert.ok(existsSync(join(ROOT, path)), `${page.name}: ${path} does not exist`);
        }
      }
  });
});
