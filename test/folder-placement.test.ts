/**
 * Where the file-per-chunk backends (hdf5, zarr) have their dataset folders placed
 * (src/backends/hdf5/folder-placement.ts): the folder a dataset or a group is made in is marked
 * as the top of a hierarchy (`chattr +T`), so that ext4 spreads datasets over its block groups;
 * where a file system has no such mark, datasets are made all the same. The flags are read with
 * e2fsprogs' `lsattr` (Debian: required), on the test folder's own file system: the system's
 * temporary folder (ext4 on the project's machines), or `DOSNA_TEST_EXT4_DIR` where that is not
 * on ext2/3/4 (a tmpfs /tmp); the first test fails, and says so, on a file system without them.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { spreadSubfolders } from '../src/backends/hdf5/folder-placement.js';
import { nativeModule } from '../src/native.js';

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(process.env.DOSNA_TEST_EXT4_DIR ?? os.tmpdir(), 'dosna-placement-test-')); });
afterAll(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

/** The attribute letters `lsattr -d` shows for a folder ('T': its subfolders are spread). */
function attributes(folder: string): string {
  return execFileSync('lsattr', ['-d', folder], { encoding: 'utf8' }).trim().split(/\s+/)[0];
}

describe('dataset folders placed apart', () => {
  it('the test folder takes ext2/3/4 attribute flags (else these tests cannot tell)', () => {
    expect(() => attributes(tmp), `lsattr -d ${tmp}: the test folder must be on ext2/3/4 (set DOSNA_TEST_EXT4_DIR to a folder on one)`).not.toThrow();
    expect(nativeModule()?.spreadSubfolders, 'native/build/Release/dosna_native.node with spreadSubfolders (npm ci builds it)').toBeTypeOf('function');
  });

  for (const backend of ['hdf5', 'zarr'] as const) {
    it(`${backend}: the connection folder and a group's folder are marked when a dataset is made in them; the dataset's own folder is not`, async () => {
      const directory = path.join(tmp, backend);
      await dn.withConnection('placed', { backend, directory, create: true }, async (con) => {
        const root = path.join(directory, 'placed');
        // Connecting alone changes no attribute: only making a dataset or group does.
        expect(attributes(root)).not.toContain('T');
        const top = await con.createDataset('top', { shape: [4, 4], dtype: 'int32', chunkSize: [2, 2] });
        expect(attributes(root)).toContain('T');
        const nested = await con.createDataset('scan/inner', { shape: [4, 4], dtype: 'int32', chunkSize: [2, 2] });
        expect(attributes(path.join(root, 'scan'))).toContain('T');
        expect(attributes(path.join(root, 'top'))).not.toContain('T');
        expect(attributes(path.join(root, 'scan', 'inner'))).not.toContain('T');
        // The datasets work as any other.
        await top.set([s(0, 4), s(0, 4)], dn.ndarray(Int32Array.from({ length: 16 }, (_, i) => i), [4, 4]));
        await nested.set([s(1, 3), s(1, 3)], 7);
        expect([...(await top.get([s(1, 3), 2])).data]).toEqual([6, 10]);
        expect([...(await nested.get([1])).data]).toEqual([0, 7, 7, 0]);
      });
    });
  }

  for (const backend of ['hdf5', 'zarr'] as const) {
    it(`${backend}: a folder whose file system has no such mark is left as it is, and datasets are made in it all the same`, async () => {
      // tmpfs (Linux before 6.0 has no attribute flags there; later ones have no 'T'): nothing to mark.
      const shm = '/dev/shm';
      expect(fs.existsSync(shm), 'a tmpfs at /dev/shm').toBe(true);
      const directory = fs.mkdtempSync(path.join(shm, 'dosna-placement-test-'));
      try {
        expect(spreadSubfolders(directory)).toBe(false);
        await dn.withConnection('plain', { backend, directory, create: true }, async (con) => {
          const ds = await con.createDataset('g/a', { shape: [4], dtype: 'float32', chunkSize: [2] });
          await ds.set([s(1, 3)], 2.5);
          expect([...(await ds.get()).data]).toEqual([0, 2.5, 2.5, 0]);
        });
      } finally {
        fs.rmSync(directory, { recursive: true, force: true });
      }
    });
  }

  it('marks a folder again when it lost its mark, and a group made again after its deletion', async () => {
    const directory = path.join(tmp, 'again');
    await dn.withConnection('again', { backend: 'hdf5', directory, create: true }, async (con) => {
      const root = path.join(directory, 'again');
      await con.createDataset('g/a', { shape: [2], dtype: 'int8', chunkSize: [2] });
      expect(attributes(path.join(root, 'g'))).toContain('T');
      await con.delGroup('g', { recursive: true });
      await con.createDataset('g/b', { shape: [2], dtype: 'int8', chunkSize: [2] });
      expect(attributes(path.join(root, 'g'))).toContain('T');
      execFileSync('chattr', ['-T', root]);
      expect(attributes(root)).not.toContain('T');
      await con.createDataset('c', { shape: [2], dtype: 'int8', chunkSize: [2] });
      expect(attributes(root)).toContain('T');
    });
  });

  it('answers false, touching nothing, for a path that is no folder', () => {
    const file = path.join(tmp, 'plain-file');
    fs.writeFileSync(file, 'x');
    expect(spreadSubfolders(file)).toBe(false);
    expect(spreadSubfolders(path.join(tmp, 'no-such-folder'))).toBe(false);
    expect(spreadSubfolders('')).toBe(false);
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
  });
});
