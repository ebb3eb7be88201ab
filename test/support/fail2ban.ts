/** The fail2ban filter shipped under examples/fail2ban/, read as fail2ban reads it. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FAIL2BAN_FILTER = fileURLToPath(
  new URL('../../examples/fail2ban/filter.d/secp2psip.conf', import.meta.url),
);

/**
 * The filter's failregex as a JS regex: `%(name)s` interpolated from the
 * [Definition] section, `<HOST>` an address group (IPv4 or IPv6, as
 * fail2ban's own <HOST> takes them). fail2ban searches (unanchored), as
 * RegExp.exec does.
 */
export function failregexOf(conf = readFileSync(FAIL2BAN_FILTER, 'utf8')): RegExp {
  const vars = new Map<string, string>();
  let fail = '';
  for (const line of conf.split('\n')) {
    const m = /^(\w+)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'failregex') fail = m[2];
    else vars.set(m[1], m[2]);
  }
  const expanded = fail.replace(/%\((\w+)\)s/g, (_s, name: string) => vars.get(name) ?? '');
  return new RegExp(expanded.replace('<HOST>', '(?<host>[0-9A-Fa-f.:]+)'));
}
