/**
 * Chunk files read on libuv's thread pool and copied out there (src/chunk-io.ts `readSpan`, the
 * `then` of native/file-io.c's readFileRanges), by the hdf5 and zarr backends: the copy is made
 * only when the read found dosna's own byte template (hdf5) and the length expected, so a file
 * h5py rewrote is still read through HDF5, a zarr chunk file of another length is refused, and
 * missing chunks are the fill value.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { nativeModule, type NativeModule } from '../src/native.js';
import { hdf5TestFolder } from './support/hdf5-folder.js';
import { python } from './support/python.js';

const folder = hdf5TestFolder();

/** Counts the native reads given a copy to make (`then`) and those that made it, while `body` runs. */
async function countCopies<T>(body: () => Promise<T>): Promise<{ result: T; asked: number; copied: number }> {
  const native = nativeModule() as NativeModule;
  const original = native.readFileRanges;
  let asked = 0;
  let copied = 0;
  const note = (read: { copied: boolean } | null) => {
    if (read?.copied) copied++;
    return read;
  };
  native.readFileRanges = ((...args: Parameters<NativeModule['readFileRanges']>) => {
    if (args[6]) asked++;
    const read = original.apply(native, args);
    return read instanceof Promise ? read.then(note) : note(read);
  }) as NativeModule['readFileRanges'];
  try {
    return { result: await body(), asked, copied };
  } finally {
    native.readFileRanges = original;
  }
}

const shape = [128, 128, 64];
/** Cell (i, j, k) holds i * 100000 + j * 100 + k. */
const value = (i: number, j: number, k: number) => i * 100000 + j * 100 + k;
/** The cube of `shape` holding `value`. */
function cube(): dn.NdArray<Float32Array> {
  const data = new Float32Array(128 * 128 * 64);
  for (let i = 0; i < 128; i++) for (let j = 0; j < 128; j++) for (let k = 0; k < 64; k++) data[(i * 128 + j) * 64 + k] = value(i, j, k);
  return dn.ndarray(data, shape);
}
const block = [s(10, 120), s(3, 100), s(5, 60)];
/** Checks that `got` holds block's cells as `holds` gives them. */
function check(got: dn.NdArray, holds: (i: number, j: number, k: number) => number): void {
  expect(got.shape).toEqual([110, 97, 55]);
  const cells = got.data as Float32Array;
  let wrong = 0;
  for (let i = 0; i < 110; i++) for (let j = 0; j < 97; j++) for (let k = 0; k < 55; k++) {
    if (cells[(i * 97 + j) * 55 + k] !== holds(i + 10, j + 3, k + 5)) wrong++;
  }
  expect(wrong).toBe(0);
}

describe('hdf5: chunk files copied out on the thread that read them', () => {
  it('gives the cells of a block from files of 1 MiB, and reads a file h5py rewrote through HDF5', async () => {
    // No chunk cache: every get reads the files. Chunks of 64^3 float32 (1 MiB files) are read on the thread pool.
    const con = await folder.connection('copy-out', { cacheBytes: 0 }).connect();
    try {
      const ds = await con.createDataset('d', { data: cube(), chunkSize: [64, 64, 64], fillValue: -1 });
      const first = await countCopies(() => ds.get(block));
      check(first.result, value);
      expect(first).toMatchObject({ asked: 4, copied: 4 }); // the block touches 2 x 2 x 1 chunks

      // Chunk (1, 0, 0) rewritten by h5py in HDF5's chunked layout: not dosna's template, never copied out as if it were.
      python(`
import h5py, numpy as np, sys
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('data', data=np.full((64, 64, 64), 77, dtype=np.float32), chunks=(32, 32, 32))
`, path.join(folder.path, 'copy-out', 'd', 'chunk_1_0_0.h5'));
      const rewritten = await countCopies(() => ds.get(block));
      check(rewritten.result, (i, j, k) => (i >= 64 && j < 64 ? 77 : value(i, j, k)));
      expect(rewritten).toMatchObject({ asked: 4, copied: 3 });

      // A chunk deleted: the fill value, nothing to copy.
      await con.store.deleteChunk(await ds.current(), [0, 1, 0]);
      const deleted = await countCopies(() => ds.get(block));
      check(deleted.result, (i, j, k) => (i >= 64 && j < 64 ? 77 : i < 64 && j >= 64 ? -1 : value(i, j, k)));
      expect(deleted).toMatchObject({ asked: 4, copied: 2 });
    } finally {
      await con.disconnect();
    }
  });

  it('zarr: copies out of chunk files of the length expected, and refuses one of another length', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dosna-copy-out-'));
    try {
      await dn.withConnection('z', { backend: 'zarr', directory: tmp, create: true, cacheBytes: 0 }, async (con) => {
        const ds = await con.createDataset('d', { data: cube(), chunkSize: [64, 64, 64], fillValue: -1 });
        const first = await countCopies(() => ds.get(block));
        check(first.result, value);
        expect(first).toMatchObject({ asked: 4, copied: 4 });
        // Chunk (1, 0, 0) one byte longer: read whole and refused, never copied out as if it were the chunk.
        const file = path.join(tmp, 'z', 'd', 'c', '1', '0', '0');
        expect(fs.existsSync(file)).toBe(true);
        fs.appendFileSync(file, Buffer.from([0]));
        let refused: unknown;
        const longer = await countCopies(() => ds.get(block).catch((error: unknown) => { refused = error; }));
        expect(refused).toBeInstanceOf(dn.CorruptChunkError);
        expect(longer.copied).toBeLessThan(longer.asked);
      });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
