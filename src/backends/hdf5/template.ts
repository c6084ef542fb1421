/**
 * The fast path for uncompressed chunks.
 *
 * An uncompressed chunk file is HDF5's header, then the chunk's bytes (contiguous layout),
 * then sometimes a trailer; for a given dtype and chunk shape only the header's timestamps
 * vary. So, once per layout, HDF5 (h5wasm) writes two sample files; the bytes around the data
 * become a template, with the timestamps set to 0 and the object headers' checksums redone.
 * The template is checked by reading a file made from it back through HDF5. Then writing a
 * chunk is one writev of template + bytes, and reading a file that matches the template
 * byte for byte is one read; any other file (h5py's, gzip, a damaged one) goes through HDF5.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { readThroughHdf5, SCRATCH_LIMIT, writeThroughHdf5, type ChunkFileLayout } from './h5lib.js';
import type { Template } from './files.js';
import { tmpName } from './locks.js';

/** Bob Jenkins' lookup3 `hashlittle`, as HDF5 checksums its metadata (H5_checksum_lookup3). */
export function lookup3(key: Uint8Array, initval = 0): number {
  let length = key.length;
  let a = (0xdeadbeef + length + initval) >>> 0;
  let b = a;
  let c = a;
  const rot = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
  let k = 0;
  while (length > 12) {
    a = (a + (key[k] | (key[k + 1] << 8) | (key[k + 2] << 16) | (key[k + 3] << 24))) >>> 0;
    b = (b + (key[k + 4] | (key[k + 5] << 8) | (key[k + 6] << 16) | (key[k + 7] << 24))) >>> 0;
    c = (c + (key[k + 8] | (key[k + 9] << 8) | (key[k + 10] << 16) | (key[k + 11] << 24))) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rot(c, 4)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 6)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 8)) >>> 0; b = (b + a) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rot(c, 16)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 19)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 4)) >>> 0; b = (b + a) >>> 0;
    length -= 12;
    k += 12;
  }
  if (length === 0) return c;
  const at = (i: number) => (i < length ? key[k + i] : 0);
  a = (a + (at(0) | (at(1) << 8) | (at(2) << 16) | (at(3) << 24))) >>> 0;
  b = (b + (at(4) | (at(5) << 8) | (at(6) << 16) | (at(7) << 24))) >>> 0;
  c = (c + (at(8) | (at(9) << 8) | (at(10) << 16) | (at(11) << 24))) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 24)) >>> 0;
  return c;
}

/**
 * Sets the timestamps of every version-2 object header in `bytes` to 0 and redoes their
 * checksums. Returns false when a header does not parse or its checksum does not match
 * (then the template is not used).
 */
function zeroTimestamps(bytes: Buffer): boolean {
  const sig = Buffer.from('OHDR');
  for (let at = bytes.indexOf(sig); at >= 0; at = bytes.indexOf(sig, at + 4)) {
    if (bytes[at + 4] !== 2) return false;
    const flags = bytes[at + 5];
    let p = at + 6;
    const times = flags & 0x20 ? p : -1;
    if (flags & 0x20) p += 16;
    if (flags & 0x10) p += 4;
    const width = 1 << (flags & 3);
    if (p + width > bytes.length) return false;
    const size = Number(bytes.readUIntLE(p, Math.min(width, 6)));
    const end = p + width + size; // the checksum's offset
    if (end + 4 > bytes.length) return false;
    if (lookup3(bytes.subarray(at, end)) !== bytes.readUInt32LE(end)) return false;
    if (times >= 0) {
      bytes.fill(0, times, times + 16);
      bytes.writeUInt32LE(lookup3(bytes.subarray(at, end)), end);
    }
    at = end;
  }
  return true;
}

const templates = new Map<string, Template | null>();

/**
 * The names of the three sample files. In the dataset's folder when this process may write
 * there, as temporary files of this process: if it is killed while they exist, the next
 * process to open the folder removes them (sweepFolder), and they go with the dataset. Else
 * (a folder only readable) in the system's temporary folder, where a kill at that moment
 * leaves them.
 * @internal
 */
export function sampleNames(dir: string | undefined): string[] {
  const numbers = [1, 2, 3];
  if (dir) {
    try {
      fs.accessSync(dir, fs.constants.W_OK);
      return numbers.map((n) => tmpName(path.join(dir, `template-${n}`)));
    } catch { /* read-only: below */ }
  }
  const base = path.join(os.tmpdir(), `dosna-hdf5-template-${process.pid}-${randomBytes(6).toString('hex')}`);
  return numbers.map((n) => `${base}-${n}.h5`);
}

/**
 * The byte template of `info`'s chunk files, or `null` when there is none (compressed, too big,
 * or HDF5 laid it out otherwise). `info.dir`, the dataset's folder, is where the samples are made.
 */
export function makeTemplate(info: ChunkFileLayout & { readonly dir?: string }): Template | null {
  if (info.compressed || info.bytes === 0 || info.bytes > SCRATCH_LIMIT) return null;
  const key = `${info.dtype}:${info.chunkShape.join(',')}`;
  const known = templates.get(key);
  if (known !== undefined) return known;
  let template: Template | null = null;
  const [first, second, check] = sampleNames(info.dir);
  try {
    const one = new Uint8Array(info.bytes).fill(0x5a);
    const two = new Uint8Array(info.bytes).fill(0xa5);
    writeThroughHdf5(first, info, one);
    writeThroughHdf5(second, info, two);
    const a = fs.readFileSync(first);
    const b = fs.readFileSync(second);
    // The data is where the two files differ (after their timestamps are made equal).
    if (a.length === b.length && zeroTimestamps(a) && zeroTimestamps(b)) {
      let first = 0;
      while (first < a.length && a[first] === b[first]) first++;
      const dataEnd = first + info.bytes;
      if (dataEnd <= a.length && a.subarray(dataEnd).equals(b.subarray(dataEnd))
        && a.subarray(first, dataEnd).every((x) => x === 0x5a)) {
        const candidate = { prefix: Buffer.from(a.subarray(0, first)), suffix: Buffer.from(a.subarray(dataEnd)) };
        // Check: a file made from the template reads back through HDF5 as its data.
        const sample = new Uint8Array(info.bytes);
        for (let i = 0; i < sample.length; i++) sample[i] = (i * 131 + 7) & 255;
        fs.writeFileSync(check, Buffer.concat([candidate.prefix, sample, candidate.suffix]));
        const back = readThroughHdf5(check, info);
        if (Buffer.from(back).equals(Buffer.from(sample))) template = candidate;
      }
    }
  } catch {
    template = null;
  } finally {
    for (const file of [first, second, check]) fs.rmSync(file, { force: true });
  }
  templates.set(key, template);
  return template;
}
