/**
 * The conformance suite for compressed datasets (issue 16), over every backend x engine:
 * every dtype through every codec, with and without shuffle, partial writes included; the
 * codec survives a new connection; options are checked; a damaged compressed chunk is a
 * `CorruptChunkError`. What h5py makes of the hdf5 chunk files is in test/hdf5-codecs.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import type { Compression } from '../src/codecs/index.js';
import { pipelineHeader } from '../src/backends/hdf5/pipeline.js';
import { ALL_DTYPES, randomTyped } from './support/data.js';
import { closeConnection, combos, openConnection, reopen, type Combo } from './support/matrix.js';
import { rng } from './support/reference.js';

const CODECS: { compression: dn.CompressionName; shuffle: boolean; compressionLevel?: number }[] = [
  { compression: 'gzip', shuffle: false },
  { compression: 'gzip', shuffle: true, compressionLevel: 1 },
  { compression: 'zstd', shuffle: false, compressionLevel: 1 },
  { compression: 'zstd', shuffle: true },
  { compression: 'lz4', shuffle: false },
  { compression: 'lz4', shuffle: true },
];

const flat = (a: { data: ArrayLike<number | bigint> }) => Array.from(a.data as ArrayLike<number | bigint>);

describe.each(combos())('compression: $label', (combo: Combo) => {
  let con: dn.Connection;
  beforeAll(async () => { con = await openConnection(combo); });
  afterAll(async () => { await closeConnection(con); });

  it.each(CODECS)('every dtype round-trips through $compression (shuffle $shuffle), partial writes included', async (codec) => {
    const r = rng(7);
    for (const dtype of ALL_DTYPES) {
      const name = `c-${codec.compression}-${codec.shuffle}-${dtype}`;
      const values = randomTyped(r, dtype, 30 * 20);
      const ds = await con.createDataset(name, { data: dn.ndarray(values, [30, 20]), chunkSize: [8, 16], ...codec });
      // A partial write of a few cells of two chunks (read, merged, re-compressed).
      const cell = dtype.includes('64') && dtype.includes('int') ? 7n : 7;
      await ds.set([s(6, 10), 3], cell);
      for (let i = 6; i < 10; i++) (values as unknown as (number | bigint)[])[i * 20 + 3] = cell;
      await ds.flush();
      expect(flat(await ds.get()), name).toEqual(Array.from(values as ArrayLike<number | bigint>));
      expect(flat(await ds.get([s(7, 9), s(2, 5)])), name).toEqual([7, 8].flatMap((i) => [2, 3, 4].map((j) => (values as ArrayLike<number | bigint>)[i * 20 + j])));
      expect(ds.compression).toBe(codec.compression);
      expect(ds.shuffle).toBe(codec.shuffle);
    }
  });

  it('the codec is part of the dataset: a new connection reads it back, and clone and map keep it', async () => {
    // Smooth data of a few significant bits, as a detector's counts scaled to float are.
    const data = dn.ndarray(Float32Array.from({ length: 64 * 64 }, (_, i) => Math.round(Math.sin(i / 300) * 1000) / 4), [64, 64]);
    const ds = await con.createDataset('kept', { data, chunkSize: [32, 32], compression: 'zstd', compressionLevel: 5, shuffle: true });
    const other = await reopen(con);
    try {
      const again = await other.getDataset('kept');
      expect([again.compression, again.compressionLevel, again.shuffle]).toEqual(['zstd', 5, true]);
      expect(flat(await again.get())).toEqual(Array.from(data.data));
      // Shuffled, such data takes well under half its raw size (chunk files' own overhead included).
      expect(await again.storedBytes()).toBeLessThan(64 * 64 * 4 * 0.5);
    } finally {
      await other.disconnect();
    }
    const copy = await ds.clone('kept-copy', { data: true });
    expect([copy.compression, copy.compressionLevel, copy.shuffle]).toEqual(['zstd', 5, true]);
    expect(flat(await copy.get())).toEqual(Array.from(data.data));
    const plain = await con.createDataset('plain', { shape: [4] });
    expect([plain.compression, plain.compressionLevel, plain.shuffle]).toEqual([null, null, false]);
    expect((await ds.storedBytes()) < (await (await con.createDataset('raw-kept', { data, chunkSize: [32, 32] })).storedBytes())).toBe(true);
  });

  it('refuses bad compression options before anything is made', async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ compression: 'brotli' }, /compression must be one of 'gzip', 'zstd', 'lz4'/],
      [{ compression: 'gzip', compressionLevel: 10 }, /from 0 to 9/],
      [{ compression: 'zstd', compressionLevel: 0 }, /from 1 to 22/],
      [{ compression: 'zstd', compressionLevel: 2.5 }, /integer/],
      [{ compression: 'lz4', compressionLevel: 1 }, /has no levels/],
      [{ compressionLevel: 4 }, /needs compression/],
      [{ shuffle: true }, /shuffle needs compression/],
      [{ compression: 'gzip', shuffle: 'yes' }, /shuffle must be true or false/],
      [{ options: { compression: 'gzip' } }, /compression|no dataset options/],
    ];
    for (const [options, message] of bad) {
      await expect(con.createDataset('bad', { shape: [4], ...options } as dn.CreateDatasetOptions), JSON.stringify(options)).rejects.toThrow(message);
      await expect(con.createDataset('bad', { shape: [4], ...options } as dn.CreateDatasetOptions)).rejects.toBeInstanceOf(dn.OptionError);
    }
    expect(await con.hasDataset('bad')).toBe(false);
  });

  it('a damaged compressed chunk is a CorruptChunkError naming it; the other chunks still read', async () => {
    for (const codec of ['gzip', 'zstd', 'lz4'] as const) {
      const name = `damaged-${codec}`;
      const ds = await con.createDataset(name, { data: dn.ndarray(Float64Array.from({ length: 64 }, (_, i) => i), [8, 8]), chunkSize: [4, 8], compression: codec });
      await damage(con, ds.meta, [1, 0]);
      const error = await ds.get([s(4, 8)]).then(() => undefined, (e: unknown) => e);
      expect(error, codec).toBeInstanceOf(dn.CorruptChunkError);
      expect((error as Error).message).toMatch(new RegExp(`${codec}`));
      expect(flat(await ds.get([s(0, 4), 0]))).toEqual([0, 8, 16, 24]);
    }
  });
});

/** Spoils the compressed bytes of one stored chunk, as a bad disk or a truncated upload would. */
async function damage(con: dn.Connection, meta: dn.DatasetMeta, index: number[]): Promise<void> {
  if (con.backend === 'hdf5') {
    const file = path.join(con.settings.options.directory as string, con.name, meta.name, `chunk_${index.join('_')}.h5`);
    const bytes = fs.readFileSync(file);
    // The filtered chunk follows our fixed-size header: overwrite it all, keeping the header.
    bytes.fill(0xa7, pipelineHeader(meta.dtype, meta.chunkSize, meta.compression!).bytes.length);
    fs.writeFileSync(file, bytes);
    return;
  }
  // Elsewhere, store bytes that are not a valid stream of the codec in its place.
  const raw: dn.DatasetMeta = { ...meta, compression: undefined as unknown as Compression };
  const garbage = new Uint8Array(meta.chunkSize.reduce((a, b) => a * b, 1) * 8).fill(0xa7);
  await con.store.writeChunk(raw, index, [garbage]);
}
