import { execFile } from 'child_process';
import path from 'path';

/** The repository (tests run from dist/test/...). */
export const ROOT = path.join(__dirname, '..', '..', '..');

/** A file of an installed package, e.g. nodeModule('typescript', 'bin', 'tsc'). */
export const nodeModule = (...parts: string[]): string => path.join(ROOT, 'node_modules', ...parts);

/**
 * Runs `node <args>` (a tool of the repository's node_modules, say) with `env` added to the
 * test's environment; never rejects: the exit code is in the result.
 */
export function runNode(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
