/**
 * A daemon's `--config FILE`: TOML (smol-toml), one key per command-line
 * option, named as the option without its dashes (`--new-names-per-minute 20`
 * is `new-names-per-minute = 20`). The keys are derived from the command's
 * option table, the same one parseArgs and --help read, so an option added
 * there is a config key at once. Two keys are the file's own: `role` (which
 * command the file is for; `secp2psip config check` reads it) and, for the
 * commands that keep phone users (`--add-user`), a `[phone-users]` table of
 * name = password.
 *
 * The schema is built with zod from the option table: value types, integer
 * bounds (`min`/`max`), allowed values (`choices`); unknown keys are refused
 * with the closest known key as a suggestion. Every problem is one
 * BAD_CONFIG line naming the file and the key (or the line, for a TOML
 * syntax error). One-shot actions (`--add-user`, `--release`, ...) stay
 * command-line flags: a config file read at every start must not repeat them.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as SmolToml from 'smol-toml';
import type * as Zod from 'zod';
import type { OptionSpec } from './args.ts';
import { OverlayError, type Result } from './errors.ts';

export type ConfigValue = string | boolean | string[];

export interface ConfigFile {
  path: string;
  /** `role = "..."` when the file names its command. */
  role?: string;
  /** Option values, as parseArgs holds them (numbers as their decimal text). */
  values: Record<string, ConfigValue>;
  /** `[phone-users]`: name -> password, for commands that keep phone users. */
  phoneUsers?: Record<string, string>;
}

/** The file's own keys, beside the options. */
export const ROLE_KEY = 'role';
export const PHONE_USERS_KEY = 'phone-users';
/** A digest user name, as phone-credentials.ts accepts it. */
const PHONE_USER_RE = /^[A-Za-z0-9._~!*'()+-]{1,64}$/;

/** Options that are never config keys: the file itself, help, and one-shot actions. */
export function configKeys(spec: Record<string, OptionSpec>): string[] {
  return Object.entries(spec)
    .filter(([name, s]) => name !== 'config' && name !== 'help' && s.action !== true)
    .map(([name]) => name);
}

/** Whether a value is a secret (redacted when printed): flagged so, or named like a password, token or key. */
export function isSecret(name: string, spec?: OptionSpec): boolean {
  return spec?.secret ?? /(password|passphrase|token|secret|private|(^|-)key$)/.test(name);
}

/** A decoder's error, or undefined when it decoded: an OptionSpec.check from a `Result` decoder. */
export const resultError = <T>(r: Result<T>): string | undefined => (r.ok ? undefined : r.error);

/**
 * zod and smol-toml are loaded on first use: a command started without --config should not pay for them
 * (zod alone takes 0.1-0.4 s to load on a busy 2-core machine).
 */
let libs: { z: typeof Zod.z; parseToml: typeof SmolToml.parse } | undefined;
function lib() {
  if (!libs) {
    const require = createRequire(import.meta.url);
    libs = { z: (require('zod') as typeof Zod).z, parseToml: (require('smol-toml') as typeof SmolToml).parse };
  }
  return libs;
}

const bad = (path: string, what: string) => new OverlayError('BAD_CONFIG', `${path}: ${what}`);

/**
 * The command this process runs (set by the dispatcher): a file whose `role` names another command is
 * refused as such before its keys are judged against the wrong options.
 */
let commandRole: string | undefined;
export function setCommandRole(role: string | undefined): void {
  commandRole = role;
}

/** Read and validate a config file against a command's options; throws one BAD_CONFIG line. */
export function readConfigFile(path: string, spec: Record<string, OptionSpec>, role?: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw bad(path, code === 'ENOENT' ? 'no such file' : `cannot read: ${(e as Error).message}`);
  }
  return parseConfigText(text, path, spec, role);
}

/** Validate TOML text as `path` (named in every error). */
export function parseConfigText(
  text: string,
  path: string,
  spec: Record<string, OptionSpec>,
  role?: string,
): ConfigFile {
  let doc: Record<string, unknown>;
  try {
    doc = lib().parseToml(text) as Record<string, unknown>;
  } catch (e) {
    const err = e as Error & { line?: number; column?: number };
    const why = err.message.split('\n')[0].replace(/^Invalid TOML document: /, '');
    throw bad(`${path}${err.line ? `:${err.line}` : ''}`, `TOML syntax error: ${why}`);
  }
  // A file written for another command is refused as such, before its keys are called unknown.
  if (role === undefined && spec.config !== undefined) role = commandRole;
  if (role !== undefined && doc[ROLE_KEY] !== undefined && doc[ROLE_KEY] !== role)
    throw bad(path, `key 'role': must be "${role}", the file is for ${JSON.stringify(doc[ROLE_KEY])}`);
  const keys = configKeys(spec);
  const extra = [ROLE_KEY, ...(spec['add-user'] ? [PHONE_USERS_KEY] : [])];
  for (const key of Object.keys(doc)) {
    if (keys.includes(key) || extra.includes(key)) continue;
    if (key === 'config') throw bad(path, "key 'config': a config file cannot name another one");
    if (spec[key] !== undefined)
      throw bad(path, `key '${key}' is a one-shot action: give it on the command line (--${key})`);
    const near = closest(key, [...keys, ...extra]);
    throw bad(path, `unknown key '${key}'${near ? ` (did you mean '${near}'?)` : ''}`);
  }
  const result = schemaOf(spec, keys, role).safeParse(doc);
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = issue.path.map(String).join('.');
    throw bad(path, `key '${key}': ${issue.message}`);
  }
  const data = result.data as Record<string, unknown>;
  const values: Record<string, ConfigValue> = {};
  for (const key of keys) if (data[key] !== undefined) values[key] = data[key] as ConfigValue;
  return {
    path,
    role: data[ROLE_KEY] as string | undefined,
    values,
    phoneUsers: data[PHONE_USERS_KEY] as Record<string, string> | undefined,
  };
}

/** The zod schema of a command's config file, from its option table. */
function schemaOf(spec: Record<string, OptionSpec>, keys: string[], role?: string) {
  const { z } = lib();
  const shape: Record<string, Zod.ZodType> = {};
  for (const key of keys) shape[key] = valueSchema(spec[key]).optional();
  shape[ROLE_KEY] = (role === undefined ? z.string() : z.literal(role, { error: `must be "${role}"` })).optional();
  if (spec['add-user'])
    shape[PHONE_USERS_KEY] = z
      .record(
        z.string().regex(PHONE_USER_RE, { error: "a user name is 1-64 letters, digits and . _ ~ ! * ' ( ) + -" }),
        z
          .string({ error: 'a password must be a string' })
          .min(8, { error: 'a password needs at least 8 characters' })
          .regex(/^[^\r\n"\\]*$/, { error: 'a password must not hold quotes, backslashes or line breaks' }),
      )
      .optional();
  return z.object(shape);
}

function valueSchema(s: OptionSpec): Zod.ZodType {
  const { z } = lib();
  if (s.type === 'boolean') return z.boolean({ error: 'must be true or false' });
  const one = z.union([z.string(), z.number()], { error: 'must be a string or a number' }).transform((v, ctx) => {
    const text = typeof v === 'number' ? String(v) : v;
    if (s.min !== undefined || s.max !== undefined) {
      if (!/^-?\d+$/.test(text)) {
        ctx.addIssue({ code: 'custom', message: `must be an integer, got ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      const n = Number(text);
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) {
        ctx.addIssue({ code: 'custom', message: `must be between ${s.min ?? '-inf'} and ${s.max ?? 'inf'}, got ${n}` });
        return z.NEVER;
      }
    }
    const wrong = s.check?.(text);
    if (wrong !== undefined) {
      ctx.addIssue({ code: 'custom', message: wrong });
      return z.NEVER;
    }
    if (s.choices && !s.choices.includes(text)) {
      ctx.addIssue({ code: 'custom', message: `must be one of ${s.choices.join(', ')}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return text;
  });
  if (s.type === 'list')
    return z.preprocess(
      (v) => (typeof v === 'string' || typeof v === 'number' ? [v] : v),
      z.array(one, { error: 'must be a string or a list of strings' }),
    );
  return one;
}

/** The known key closest to a misspelt one (edit distance at most a third of its length), if any. */
export function closest(word: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const k of known) {
    const d = distance(word, k);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}
