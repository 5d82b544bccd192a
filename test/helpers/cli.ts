import { ChildProcess, spawn } from 'child_process';
import path from 'path';

/** dist/cli.js, the compiled CLI (tests run from dist/test/...). */
export const CLI = path.join(__dirname, '..', '..', 'cli.js');

export interface CliProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the first match of `re` in stdout+stderr; rejects after `timeoutMs` or on exit. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();

/** Kills every CLI process a test started and has not seen exit (call in afterEach). */
export async function killAllCli(): Promise<void> {
  const waits = [...live].map(
    (child) =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  );
  await Promise.all(waits);
}

/**
 * Runs `node dist/cli.js ...args` with `env` added to (or, with `replaceEnv`, instead of) the
 * test's environment; with `program`, runs `program ...args` instead (e.g. the CLI under `script`).
 */
export function runCli(args: string[], env: Record<string, string> = {}, replaceEnv = false, program?: string): CliProcess {
  const child = spawn(program ?? process.execPath, program ? args : [CLI, ...args], {
    env: replaceEnv ? env : { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  live.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  return {
    child,
    output: () => out,
    exited,
    waitFor(re, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const tick = () => {
          const m = out.match(re);
          if (m) return resolve(m);
          if (child.exitCode !== null) return reject(new Error(`CLI exited (${child.exitCode}) before ${re}: ${out}`));
          if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${re}: ${out}`));
          setTimeout(tick, 20);
        };
        tick();
      });
    },
  };
}

/** Runs the CLI to completion; resolves with exit code and output. */
export async function runCliToEnd(
  args: string[],
  env: Record<string, string> = {},
  replaceEnv = false,
  program?: string,
): Promise<{ code: number | null; out: string }> {
  const p = runCli(args, env, replaceEnv, program);
  const code = await p.exited;
  return { code, out: p.output() };
}
