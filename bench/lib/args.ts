/**
 * Command-line options of the benchmark programs: `--name value`. A bad value stops the program with one line
 * naming the option (exit 2), as the daemons' own options do.
 */

/** `--name <positive number>`, else `dflt`. */
export function numberOption(name: string, dflt: number): number;
export function numberOption(name: string, dflt?: number): number | undefined;
export function numberOption(name: string, dflt?: number): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`--${name} needs a positive number\n`);
    process.exit(2);
  }
  return v;
}

/** `--name <text>`, else undefined. */
export function stringOption(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}
