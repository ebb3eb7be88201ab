/**
 * A progress bar on stderr for long runs. Silent when stderr is not a TTY
 * unless forced, so CI logs and piped JSON stay clean.
 */
export class ProgressBar {
  private last = 0;
  private readonly enabled: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number,
    opts: { force?: boolean; quiet?: boolean } = {},
  ) {
    this.enabled = !opts.quiet && (opts.force === true || process.stderr.isTTY === true);
  }

  update(done: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (done < this.total && now - this.last < 100) return;
    this.last = now;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const width = 30;
    const filled = Math.round(frac * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    process.stderr.write(`\r${this.label} [${bar}] ${done}/${this.total} ${(frac * 100).toFixed(0)}%`);
  }

  done(): void {
    if (!this.enabled) return;
    this.update(this.total);
    process.stderr.write('\n');
  }
}
