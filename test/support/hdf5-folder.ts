/**
 * A temporary folder for the tests of one hdf5 test file, made (with h5py installed for the
 * reference reads) before its tests and removed after them, and connections in it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import * as dn from '../../src/index.js';
import { ensureDebianPackages } from './python.js';

export interface Hdf5TestFolder {
  /** The folder (only inside tests and hooks: it is made in `beforeAll`). */
  readonly path: string;
  /** An hdf5 connection `name` in the folder, created if missing. */
  connection(name: string, options?: Record<string, unknown>): dn.Connection;
}

/** Registers the folder's `beforeAll` and `afterAll` in the calling test file. */
export function hdf5TestFolder(): Hdf5TestFolder {
  let dir: string | undefined;
  beforeAll(() => {
    ensureDebianPackages('python3-h5py', 'python3-numpy');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dosna-hdf5-test-'));
  }, 600_000);
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  const folder: Hdf5TestFolder = {
    get path() {
      if (!dir) throw new Error('the hdf5 test folder is made in beforeAll: use it inside tests');
      return dir;
    },
    connection: (name, options = {}) => dn.connection(name, { backend: 'hdf5', directory: folder.path, create: true, ...options }),
  };
  return folder;
}
