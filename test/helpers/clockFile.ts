import fs from 'fs';

/**
 * Preloaded into a CLI process by tests (`NODE_OPTIONS=--require <this file>` with
 * TEST_CLOCK_FILE set): Date.now() runs from the epoch ms the test last wrote to that file,
 * on in real time from the moment it was read. The test moves the process's clock by
 * writing the file (atomically: writeClock below). Everything of the product that reads
 * the time (ingest, window updates, reads, erasure) reads Date.now().
 */
const file = process.env.TEST_CLOCK_FILE;
if (file) {
  const real = Date.now.bind(Date);
  let text = '';
  let base = real();
  let since = real();
  Date.now = () => {
    const current = fs.readFileSync(file, 'utf8');
    if (current !== text && /^\d+$/.test(current)) {
      text = current;
      base = Number(current);
      since = real();
    }
    return base + (real() - since);
  };
}

/** Sets the clock of the processes reading `clockFile` to `ms`. */
export function writeClock(clockFile: string, ms: number): void {
  fs.writeFileSync(`${clockFile}.tmp`, String(ms));
  fs.renameSync(`${clockFile}.tmp`, clockFile);
}
