/**
 * The codecs themselves (src/codecs/): the shuffle against its definition, LZ4 in both
 * framings, options, and the bytes the object stores keep decoded by numcodecs (zarr-python's
 * codecs, Debian's build), so the metadata's numcodecs names are true.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCompression, decodeChunk, encodeChunk, fromNumcodecs, toNumcodecs, type Compression } from '../src/codecs/index.js';
import { decodeHdf5Lz4, decodeNumcodecsLz4, encodeHdf5Lz4, encodeNumcodecsLz4 } from '../src/codecs/lz4.js';
import { shuffle, unshuffle } from '../src/codecs/shuffle.js';
import { rng } from './support/reference.js';
import { ensureDebianPackages, python } from './support/python.js';


/** The shuffle by its definition: byte b of element i goes to b * n + i; a partial tail stays. */
function referenceShuffle(src: Uint8Array, itemsize: number): Uint8Array {
  const n = Math.floor(src.length / itemsize);
  const out = new Uint8Array(src.length);
  for (let b = 0; b < itemsize; b++) for (let i = 0; i < n; i++) out[b * n + i] = src[i * itemsize + b];
  out.set(src.subarray(n * itemsize), n * itemsize);
  return out;
}

describe('shuffle', () => {
  it.each([1, 2, 3, 4, 8])('matches its definition and inverts, for elements of %i bytes, odd lengths and unaligned input', (itemsize) => {
    const r = rng(itemsize);
    for (const length of [0, 1, 3, 7, 8, 64, 1001, 4099]) {
      const backing = Uint8Array.from({ length: length + 1 }, () => Math.floor(r() * 256));
      const src = backing.subarray(1); // not 4-byte aligned
      const shuffled = shuffle(src, itemsize);
      expect(Buffer.from(shuffled).equals(Buffer.from(referenceShuffle(src, itemsize))), `length ${length}`).toBe(true);
      expect(Buffer.from(unshuffle(shuffled, itemsize)).equals(Buffer.from(src)), `length ${length}`).toBe(true);
    }
  });
});

describe('LZ4 framings', () => {
  const inputs: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['tiny', Uint8Array.of(1, 2, 3)],
    ['runs', new Uint8Array(100_000).fill(7)],
    ['random (incompressible)', Uint8Array.from({ length: 70_000 }, (_, i) => (Math.imul(i, 2654435761) >>> 13) & 255)],
    ['text', new TextEncoder().encode('the quick brown fox jumps over the lazy dog. '.repeat(500))],
  ];
  it.each(inputs)('round-trips %s in numcodecs\' and HDF5\'s framing', (_name, input) => {
    expect(Buffer.from(decodeNumcodecsLz4(encodeNumcodecsLz4(input), input.length)).equals(Buffer.from(input))).toBe(true);
    expect(Buffer.from(decodeHdf5Lz4(encodeHdf5Lz4(input), input.length)).equals(Buffer.from(input))).toBe(true);
  });

  it('refuses a stream of the wrong size or cut short', () => {
    const input = new Uint8Array(5000).fill(3);
    const framed = encodeHdf5Lz4(input);
    expect(() => decodeHdf5Lz4(framed, 4999)).toThrow(/expected 4999/);
    expect(() => decodeHdf5Lz4(framed.subarray(0, framed.length - 2), 5000)).toThrow(/cut short|decoded to/);
    expect(() => decodeNumcodecsLz4(encodeNumcodecsLz4(input), 10)).toThrow(/expected 10/);
  });
});

describe('compression options and names', () => {
  it('fills in defaults as h5py and zstd do, and maps to and from numcodecs names', () => {
    expect(checkCompression({ compression: 'gzip' })).toEqual({ codec: 'gzip', level: 4, shuffle: false });
    expect(checkCompression({ compression: 'zstd', shuffle: true })).toEqual({ codec: 'zstd', level: 3, shuffle: true });
    expect(checkCompression({ compression: 'lz4' })).toEqual({ codec: 'lz4', level: 0, shuffle: false });
    expect(checkCompression({})).toBeUndefined();
    expect(checkCompression({ compression: null })).toBeUndefined();
    const c = checkCompression({ compression: 'zstd', compressionLevel: 7, shuffle: true })!;
    const names = toNumcodecs(c, 4);
    expect(names).toEqual({ filters: [{ id: 'shuffle', elementsize: 4 }], compressor: { id: 'zstd', level: 7 } });
    expect(fromNumcodecs(names.filters, names.compressor, 'x')).toEqual(c);
    expect(() => fromNumcodecs([{ id: 'delta' }], { id: 'zstd', level: 1 }, 'x')).toThrow(/unsupported filters/);
    expect(() => fromNumcodecs(null, { id: 'blosc' }, 'x')).toThrow(/unsupported compressor/);
  });
});

describe('numcodecs reads what the object stores keep', () => {
  let tmp: string;
  beforeAll(() => {
    ensureDebianPackages('python3-zarr', 'python3-numpy');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dosna-codecs-'));
  }, 600_000);
  afterAll(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

  it('gzip, zstd and lz4, with and without shuffle, decode with numcodecs to the same float32 values', async () => {
    const values = Float32Array.from({ length: 4096 }, (_, i) => Math.round(Math.sin(i / 90) * 1000) / 8);
    const raw = new Uint8Array(values.buffer);
    const cases: Compression[] = [];
    for (const codec of ['gzip', 'zstd', 'lz4'] as const) for (const shuffled of [false, true]) cases.push(checkCompression({ compression: codec, shuffle: shuffled })!);
    const manifest = [];
    for (const [i, c] of cases.entries()) {
      const encoded = await encodeChunk(c, 4, [raw.subarray(0, 1000), raw.subarray(1000)], 'numcodecs');
      expect(Buffer.from(await decodeChunk(c, 4, encoded, raw.length, 'numcodecs')).equals(Buffer.from(raw))).toBe(true);
      fs.writeFileSync(path.join(tmp, `${i}.bin`), encoded);
      manifest.push({ file: `${i}.bin`, ...toNumcodecs(c, 4) });
    }
    fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify(manifest));
    const out = python(`
import json, os, sys, numpy as np, numcodecs
d = sys.argv[1]
res = []
for m in json.load(open(os.path.join(d, 'manifest.json'))):
    buf = open(os.path.join(d, m['file']), 'rb').read()
    b = numcodecs.get_codec(m['compressor']).decode(buf)
    for f in reversed(m['filters'] or []):
        b = numcodecs.get_codec(f).decode(b)
    a = np.frombuffer(bytes(b), '<f4')
    res.append([float(a.sum()), a[:3].tolist()])
print(json.dumps(res))
`, tmp);
    const expected = [values.reduce((a, b) => a + b, 0), Array.from(values.subarray(0, 3))];
    for (const [sum, first] of JSON.parse(out) as [number, number[]][]) {
      expect(sum).toBeCloseTo(expected[0] as number, 3);
      expect(first).toEqual(expected[1]);
    }
  });

  it('a stream that does not decode to exactly one chunk is refused', async () => {
    const c = checkCompression({ compression: 'zstd' })!;
    const encoded = await encodeChunk(c, 4, [new Uint8Array(4000)], 'numcodecs');
    await expect(decodeChunk(c, 4, encoded, 4004, 'numcodecs')).rejects.toThrow(/4000 bytes, not the chunk's 4004/);
    await expect(decodeChunk(c, 4, encoded, 3996, 'numcodecs')).rejects.toThrow();
    await expect(decodeChunk(c, 4, encoded.subarray(0, 5), 4000, 'numcodecs')).rejects.toThrow();
  });
});
