/**
 * Debian's python3 (numpy, h5py, zarr, ...) as the tests' independent reader and writer: a
 * reference only, never a dependency of dosna. `ensureDebianPackages` installs what a test file
 * needs through the project's script (once per machine; a no-op when present).
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

export const PYTHON = '/usr/bin/python3';
const ROOT = path.resolve(import.meta.dirname, '../..');

/** Runs `code` with `args` as sys.argv[1:]; its stdout. */
export function python(code: string, ...args: string[]): string {
  return execFileSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8' });
}

/** As `python`, with more environment variables (e.g. HDF5_PLUGIN_PATH). */
export function pythonWith(env: Record<string, string>, code: string, ...args: string[]): string {
  return execFileSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

/** Installs Debian packages a test needs (scripts/ensure-debian-packages.sh). */
export function ensureDebianPackages(...names: string[]): void {
  execFileSync('bash', [path.join(ROOT, 'scripts/ensure-debian-packages.sh'), ...names], { stdio: 'inherit' });
}
