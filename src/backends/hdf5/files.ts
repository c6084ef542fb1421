/**
 * Plain-file I/O of chunk files laid out from a byte template. An uncompressed chunk file
 * written by HDF5 is always the same bytes around its data (see template.ts), so the hdf5
 * backend writes and reads such files with plain vectored file calls: the data moves straight
 * between the file and the caller's arrays, and HDF5 is needed only for files that are not
 * byte for byte ours (written by h5py, compressed, damaged). With dosna's native module a
 * file's open, reads or writes, stat and close are one call (native/file-io.c); without it,
 * Node's calls one by one. The zarr backend writes and reads its chunk files here too.
 *
 * Generations. A file's generation is its inode number and its modification time. Every file
 * this backend writes gets a modification time that no earlier file of this process had, to
 * the microsecond, and replaces the old one whole, renamed over it or swapped with it (a new
 * inode each time). A file system may give a new file the inode number of one deleted before;
 * that file was written later, so its time differs: an old generation never comes back (see
 * docs/concurrency.md).
 */
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import { ranksFillCores } from '../../cluster/ranks.js';
import { DosnaError } from '../../errors.js';
import { nativeModule } from '../../native.js';
import { discardViews } from '../../segments.js';
import type { CopyOut, Generation } from '../../store.js';

/** The bytes of a chunk file before and after its data. */
/** The `code` of a failed file call (`'ENOENT'`, ...), or `undefined` for any other error. */
export const errorCode = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | undefined)?.code;

export interface Template {
  readonly prefix: Buffer;
  readonly suffix: Buffer;
}

/**
 * In a worker thread nothing else waits for the thread, so blocking file calls are cheaper
 * than the round trips through libuv's shared thread pool; so they are in a cluster rank
 * when the ranks take every core. Otherwise the main thread stays asynchronous so its other
 * chunk tasks (copies, kernels) run while files move on an idle core.
 */
export const BLOCKING_IO = !isMainThread || ranksFillCores();

/** Linux takes at most this many buffers in one readv/writev (IOV_MAX). */
const MAX_VECTORS = 1024;

const openAsync = promisify(fs.open);
const closeAsync = promisify(fs.close);
// Plain fds and callbacks: cheaper per call than fs.promises' FileHandle objects.
const readvPromise = promisify(fs.readv);
const writevPromise = promisify(fs.writev);
const readvAsync = async (fd: number, views: Uint8Array[], position: number) => (await readvPromise(fd, views, position)).bytesRead;
const writevAsync = async (fd: number, views: Uint8Array[], position: number) => (await writevPromise(fd, views, position)).bytesWritten;
const renameAsync = promisify(fs.rename);
const fstatAsync = promisify(fs.fstat) as (fd: number, options: { bigint: true }) => Promise<fs.BigIntStats>;

type VectorCall = (fd: number, views: Uint8Array[], position: number) => number | Promise<number>;

const readv: VectorCall = BLOCKING_IO ? fs.readvSync : readvAsync;
const writev: VectorCall = BLOCKING_IO ? fs.writevSync : writevAsync;

/**
 * Moves bytes between the file at `position` and `views` in order, in calls of at most
 * MAX_VECTORS views, until every view is done or the file ends; returns the bytes moved. One
 * pass over the views, however many calls it takes. A read of a regular file that returns
 * less than asked has reached the end of the file (local file systems read regular files
 * whole), so no further call is spent on learning that; a file system that returns less
 * early makes the file look foreign, and HDF5 reads it: slower, never wrong.
 */
async function moveAll(call: VectorCall, fd: number, views: readonly Uint8Array[], position: number): Promise<number> {
  const reading = call === readv;
  let total = 0;
  let next = 0; // the first view not yet done
  let partial: Uint8Array | undefined; // what is left of views[next], when a call stopped inside it
  while (next < views.length) {
    const batch = views.slice(next, next + MAX_VECTORS);
    if (partial) batch[0] = partial;
    const n = await call(fd, batch, position + total);
    if (n === 0) break;
    if (reading && n < batch.reduce((a, v) => a + v.byteLength, 0)) return total + n;
    total += n;
    let left = n;
    partial = undefined;
    for (const view of batch) {
      if (left < view.byteLength) { partial = view.subarray(left); break; }
      left -= view.byteLength;
      next++;
    }
  }
  return total;
}

/** One positioned vectored read: `views` filled from byte `position` of the file, `bytes` expected. */
interface ReadOp { readonly position: number; readonly views: Uint8Array[]; bytes: number }

/** Reads whose gaps are smaller than this are merged into one call (the gap read into a discard buffer). */
const MERGE_GAP_BYTES = 64 * 1024;

/**
 * Adds a read of `bytes` from `position` into `views` after the reads in `ops` (the views may
 * take more: a byte past the expected end). A gap shorter than MERGE_GAP_BYTES from the read
 * before joins the two in one call, the gap read into discard buffers.
 */
function appendRead(ops: ReadOp[], position: number, views: readonly Uint8Array[], bytes: number): void {
  const last = ops.at(-1);
  const gap = last ? position - (last.position + last.bytes) : Infinity;
  if (!last || gap >= MERGE_GAP_BYTES) {
    ops.push({ position, views: [...views], bytes });
    return;
  }
  if (gap < 0) throw new DosnaError(`internal: a read at byte ${position} overlaps the one before it`);
  for (const d of discardViews(gap)) last.views.push(d);
  for (const v of views) last.views.push(v);
  last.bytes += gap + bytes;
}

/**
 * Reads the data bytes `[start, start + n)` of a templated chunk file straight into
 * `segments` (whose lengths add up to n), checking the template's bytes and the file's
 * length on the way. Resolves 'read', 'missing' (no such file) or 'foreign' (not our
 * template: the caller lets HDF5 read it; the segments may hold garbage by then), or
 * 'copied': read, and `copyOut` made on the thread that read (see `readRuns`).
 */
export async function readTemplatedInto(
  file: string, template: Template, dataBytes: number, start: number, segments: readonly Uint8Array[], copyOut?: CopyOut,
): Promise<ReadStatus> {
  return (await readTemplatedVersion(file, template, dataBytes, start, segments, false, copyOut)).status;
}

/** What a read of a chunk file found ('copied': read, and the caller's copy made too). */
export type ReadStatus = 'read' | 'copied' | 'missing' | 'foreign';

/** What a read found: with `generation` the generation of the very file that was read. */
export interface TemplatedRead {
  readonly status: ReadStatus;
  readonly generation?: Generation;
}

/** `readTemplatedInto`, also giving the generation of the file read (from the same descriptor). */
export async function readTemplatedVersion(
  file: string, template: Template, dataBytes: number, start: number, segments: readonly Uint8Array[], withGeneration: boolean, copyOut?: CopyOut,
): Promise<TemplatedRead> {
  const { prefix, suffix } = template;
  let wanted = 0;
  for (const s of segments) wanted += s.byteLength;
  if (start < 0 || start + wanted > dataBytes) throw new DosnaError(`internal: bytes [${start}, ${start + wanted}) are outside a chunk of ${dataBytes} bytes`);
  // Each call gets its own check buffers: concurrent reads must not compare each other's bytes.
  const head = Buffer.allocUnsafe(prefix.length);
  const tail = Buffer.allocUnsafe(suffix.length + 1); // one byte more than expected tells a longer file apart
  const ops: ReadOp[] = [{ position: 0, views: [head], bytes: head.length }];
  appendRead(ops, prefix.length + start, segments, wanted);
  appendRead(ops, prefix.length + dataBytes, [tail], suffix.length);
  const read = await readRuns(file, ops, withGeneration, copyOut && { ...copyOut, checks: [head, prefix, tail, suffix] });
  if (read.status === 'copied') return read; // the native read checked the template's bytes before it copied
  if (read.status !== 'read') return read;
  if (!head.equals(prefix) || tail.compare(suffix, 0, suffix.length, 0, suffix.length) !== 0) return { status: 'foreign', generation: read.generation };
  return read;
}

/** One templated chunk file's part to read in a batch: its data bytes from `start` on into `segments`. */
export interface TemplatedPart {
  readonly file: string;
  readonly start: number;
  readonly segments: readonly Uint8Array[];
}

/**
 * Whether `readTemplatedParts` reads files of this template and data size: with dosna's native
 * module, files small enough to read inline (INLINE_READ_BYTES).
 */
export function readsTemplatedParts(template: Template, dataBytes: number): boolean {
  return nativeModule() !== undefined && template.prefix.length + dataBytes + template.suffix.length <= INLINE_READ_BYTES;
}

/**
 * `readTemplatedInto` for many files at once, on this thread, in one native call (see
 * `readsTemplatedParts` for which files): each part's status, in order. The native module keeps
 * the files' descriptors open for the next read while the files are unchanged, as h5py keeps its
 * file open (native/open-files.c; `forgetOpenFiles` closes them).
 */
export function readTemplatedParts(template: Template, dataBytes: number, parts: readonly TemplatedPart[]): ('read' | 'missing' | 'foreign')[] {
  const native = nativeModule();
  if (!native || !readsTemplatedParts(template, dataBytes)) throw new DosnaError('internal: readTemplatedParts without the native module or for files too large to read inline');
  const starts = new Float64Array(parts.length);
  const counts = new Uint32Array(parts.length);
  const views: Uint8Array[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    let wanted = 0;
    for (const s of part.segments) {
      wanted += s.byteLength;
      views.push(s);
    }
    if (part.start < 0 || part.start + wanted > dataBytes) throw new DosnaError(`internal: bytes [${part.start}, ${part.start + wanted}) are outside a chunk of ${dataBytes} bytes`);
    starts[i] = part.start;
    counts[i] = part.segments.length;
  }
  const outcome = new Float64Array(parts.length);
  try {
    native.readTemplatedFiles(parts.map((p) => p.file), template.prefix, template.suffix, dataBytes, starts, counts, views, outcome);
  } catch (error) {
    throw new DosnaError(`cannot read chunk file: ${(error as Error).message}`, { cause: error });
  }
  const statuses: ('read' | 'missing' | 'foreign')[] = [];
  for (const o of outcome) statuses.push(o === 1 ? 'read' : o === 0 ? 'missing' : 'foreign');
  return statuses;
}

/**
 * Closes the descriptor `readTemplatedParts` keeps open of the chunk file `file`, or with `under`
 * of every chunk file under the folder `file`: a replaced or deleted file's space stays allocated
 * while one is open. A no-op without the native module.
 */
export function forgetOpenFiles(file: string, under = false): void {
  nativeModule()?.forgetOpenFiles(file, under);
}

/**
 * Reads that move at most this many bytes run on the calling thread even on the main one, as
 * h5py's do: from the page cache, opening, reading and closing a chunk file of 128 KiB costs
 * less than one hand-off to libuv's thread pool and back (measured by hand on the 2-core VM,
 * the native call inline against handed off: the middle 128^3 of a 256^3 float32 cube, 64 whole
 * chunks of 32^3, in 5.2 against 8.3 ms). From about a MiB the pool wins: there the read
 * itself is long enough for the second core to be worth a hand-off (64 whole chunks of 64^3
 * read in 13-18 ms handed off against 15-18 ms inline, interleaved runs of the benchmark). A
 * store on slow disks or a network file system is read in parallel by the worker-pool engine,
 * whose threads block on their own reads. See docs/backends/hdf5.md.
 */
const INLINE_READ_BYTES = 256 * 1024;

/**
 * Fills every op's views from `file`: 'read', 'missing', or 'foreign' when the file ended
 * early. With dosna's native module the open, reads and close are one step (one hand-off to
 * the thread pool, or none); without it, Node's calls one by one. With the module and
 * `copyOut`, a read that moves exactly the bytes expected, its `checks` views beginning with
 * their expected bytes ([view, expected, ...]), is also copied out by the thread that read
 * ('copied'): in the thread pool the bytes are still in that core's cache, and the main thread
 * is spared the copy (see docs/backends/hdf5.md: the 256^3 cube in 64^3 chunks into a reused
 * array, 12.0-13.6 against 16.8-19.4 ms with the copies on the main thread).
 */
async function readRuns(file: string, ops: readonly ReadOp[], withGeneration: boolean, copyOut?: CopyOut & { readonly checks: readonly Uint8Array[] }): Promise<TemplatedRead> {
  const native = nativeModule();
  if (native) {
    // The bytes the calls move, gaps read into discard buffers included.
    const expected = ops.reduce((n, op) => n + op.bytes, 0);
    const positions = new Float64Array(ops.length);
    const counts = new Uint32Array(ops.length);
    const views: Uint8Array[] = [];
    ops.forEach((op, i) => {
      positions[i] = op.position;
      counts[i] = op.views.length;
      for (const v of op.views) views.push(v);
    });
    let read;
    try {
      const then = copyOut && { bytes: expected, checks: copyOut.checks, dst: copyOut.dst, src: copyOut.src, plan: copyOut.plan };
      read = await native.readFileRanges(file, positions, counts, views, withGeneration, BLOCKING_IO || expected <= INLINE_READ_BYTES, then);
    } catch (error) {
      throw new DosnaError(`cannot read chunk file ${file}: ${(error as Error).message}`, { cause: error });
    }
    if (read === null) return { status: 'missing' };
    // Exactly the bytes expected: every run whole, the last one cut short where expected (the
    // byte past the end that tells a longer file apart).
    return { status: read.copied ? 'copied' : read.bytes === expected ? 'read' : 'foreign', generation: read.generation };
  }
  let fd: number;
  try {
    fd = BLOCKING_IO ? fs.openSync(file, 'r') : await openAsync(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { status: 'missing' };
    throw new DosnaError(`cannot read chunk file ${file}: ${(error as Error).message}`, { cause: error });
  }
  let generation: Generation | undefined;
  try {
    if (withGeneration) generation = generationOf(BLOCKING_IO ? fs.fstatSync(fd, { bigint: true }) : await fstatAsync(fd, { bigint: true }));
    for (const op of ops) {
      if (await moveAll(readv, fd, op.views, op.position) !== op.bytes) return { status: 'foreign', generation };
    }
  } catch (error) {
    throw new DosnaError(`cannot read chunk file ${file}: ${(error as Error).message}`, { cause: error });
  } finally {
    if (BLOCKING_IO) fs.closeSync(fd); else await closeAsync(fd);
  }
  return { status: 'read', generation };
}

/**
 * Reads a whole templated chunk file: its data bytes in a buffer of their own (8-byte
 * aligned, so a typed view of any dtype needs no copy), `undefined` when the file does not
 * exist, `null` when it is not our template.
 */
export async function readTemplated(file: string, template: Template, dataBytes: number, into?: Uint8Array): Promise<Uint8Array | undefined | null> {
  // allocUnsafeSlow: chunk-sized buffers come back from malloc already faulted in (a fresh,
  // zeroed ArrayBuffer per chunk costs a page fault per 4 KiB), and every byte is read.
  const data = into ?? new Uint8Array(Buffer.allocUnsafeSlow(dataBytes).buffer, 0, dataBytes);
  const status = await readTemplatedInto(file, template, dataBytes, 0, [data]);
  return status === 'read' ? data : status === 'missing' ? undefined : null;
}

/**
 * A whole templated chunk file with the generation of the file read; `bytes` null when it is
 * not our template. Read into `into` (of `dataBytes`) when given.
 */
export async function readTemplatedWithGeneration(file: string, template: Template, dataBytes: number, into?: Uint8Array): Promise<{ bytes: Uint8Array | null; generation: Generation } | undefined> {
  const data = into ?? new Uint8Array(Buffer.allocUnsafeSlow(dataBytes).buffer, 0, dataBytes);
  const read = await readTemplatedVersion(file, template, dataBytes, 0, [data], true);
  if (read.status === 'missing') return undefined;
  return { bytes: read.status === 'read' ? data : null, generation: read.generation! };
}

/**
 * Reads a file expected to hold exactly `size` bytes (an uncompressed zarr chunk) with the
 * generation of the very file read, in one step with dosna's native module; `bytes` null when
 * its length is another, `undefined` when it does not exist.
 */
export async function readFileOfSize(file: string, size: number): Promise<{ bytes: Uint8Array | null; generation: Generation } | undefined> {
  const data = new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
  const beyond = new Uint8Array(1); // a byte read here tells a longer file apart
  const read = await readRuns(file, [{ position: 0, views: [data, beyond], bytes: size }], true);
  if (read.status === 'missing') return undefined;
  return { bytes: read.status === 'read' ? data : null, generation: read.generation! };
}

/**
 * Reads bytes `[start, start + n)` of a file expected to hold exactly `size` bytes (an
 * uncompressed zarr chunk) straight into `segments` (whose lengths add up to n), checking the
 * file's length on the way: 'read', 'missing', or 'foreign' when its length is another (the
 * segments may hold garbage by then).
 */
export async function readPartOfSize(file: string, size: number, start: number, segments: readonly Uint8Array[], copyOut?: CopyOut): Promise<ReadStatus> {
  let wanted = 0;
  for (const s of segments) wanted += s.byteLength;
  if (start < 0 || start + wanted > size || size === 0) throw new DosnaError(`internal: bytes [${start}, ${start + wanted}) are outside a file of ${size} bytes`);
  const ops: ReadOp[] = [];
  if (wanted > 0) appendRead(ops, start, segments, wanted);
  // The file's last byte (unless the segments take it) and one past it, which must not exist.
  const end = start + wanted;
  if (end === size) appendRead(ops, size, [new Uint8Array(1)], 0);
  else appendRead(ops, size - 1, [new Uint8Array(2)], 1);
  return (await readRuns(file, ops, false, copyOut && { ...copyOut, checks: [] })).status;
}

/**
 * Reads a whole file (a compressed chunk file, small) with the generation of the very file
 * read; `undefined` when it does not exist.
 */
export async function readWholeFile(file: string): Promise<{ bytes: Uint8Array; generation: Generation } | undefined> {
  let fd: number;
  try {
    fd = BLOCKING_IO ? fs.openSync(file, 'r') : await openAsync(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DosnaError(`cannot read chunk file ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const stats = BLOCKING_IO ? fs.fstatSync(fd, { bigint: true }) : await fstatAsync(fd, { bigint: true });
    const size = Number(stats.size);
    const bytes = new Uint8Array(size);
    const read = await moveAll(readv, fd, [bytes], 0);
    if (read !== size) throw new DosnaError(`read ${read} of ${size} bytes of ${file}`);
    return { bytes, generation: generationOf(stats) };
  } catch (error) {
    if (error instanceof DosnaError) throw error;
    throw new DosnaError(`cannot read chunk file ${file}: ${(error as Error).message}`, { cause: error });
  } finally {
    if (BLOCKING_IO) fs.closeSync(fd); else await closeAsync(fd);
  }
}

/**
 * Writes `parts` as a new file `file` (the caller renames it over the chunk), stamps it with a
 * unique modification time, and returns its generation.
 */
export async function writeFileParts(file: string, parts: readonly Uint8Array[]): Promise<Generation> {
  // One step with dosna's native module: open, write, stamp, stat and close in one hand-off.
  const native = nativeModule();
  if (native) return native.writeNewFile(file, parts, uniqueStamp(), BLOCKING_IO);
  const fd = BLOCKING_IO ? fs.openSync(file, 'w') : await openAsync(file, 'w');
  try {
    const total = parts.reduce((n, p) => n + p.byteLength, 0);
    const written = await moveAll(writev, fd, parts, 0);
    if (written !== total) throw new DosnaError(`wrote ${written} of ${total} bytes to ${file}`);
    return stampDescriptor(fd);
  } finally {
    if (BLOCKING_IO) fs.closeSync(fd); else await closeAsync(fd);
  }
}

/** Gives a file written by other means (HDF5 itself) a unique modification time; returns its generation. */
export async function stampFile(file: string): Promise<Generation> {
  const fd = BLOCKING_IO ? fs.openSync(file, 'r+') : await openAsync(file, 'r+');
  try {
    return stampDescriptor(fd);
  } finally {
    if (BLOCKING_IO) fs.closeSync(fd); else await closeAsync(fd);
  }
}

let lastStamp = 0;

/**
 * A modification time, in seconds, later than any this process stamped before by at least a
 * microsecond (a double keeps about half a microsecond of a current time).
 */
export function uniqueStamp(): number {
  const now = (performance.timeOrigin + performance.now()) / 1000;
  lastStamp = Math.max(now, lastStamp + 1e-6);
  return lastStamp;
}

/**
 * Stamps an open file and returns its generation. Synchronous on every thread: two metadata
 * calls of a few microseconds cost less than two round trips through libuv's thread pool.
 */
function stampDescriptor(fd: number): Generation {
  const stamp = uniqueStamp();
  fs.futimesSync(fd, stamp, stamp);
  return generationOf(fs.fstatSync(fd, { bigint: true }));
}

/** The generation of a file from its (bigint) stat: inode and modification time. */
export function generationOf(stats: fs.BigIntStats): Generation {
  return `${stats.ino}:${stats.mtimeNs}`;
}

/**
 * The generation of the file at `file`, or `null` when there is none: through the native module
 * when it is built (a dataset's metadata file is checked at every operation, and Node's bigint
 * stat costs about twice the system call, see native/file-io.c).
 */
export function statGeneration(file: string): Generation | null {
  const native = nativeModule();
  if (native) {
    // The native call takes NUL as the end of a path.
    if (file.includes('\0')) throw new DosnaError(`a path holds NUL: ${JSON.stringify(file)}`);
    return native.statGenerations(file) || null;
  }
  try {
    return generationOf(fs.statSync(file, { bigint: true }));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw error;
  }
}

/**
 * The generations of many files at once (`statGeneration` of each): one native call when the
 * module is built, the paths and the generations passing as one string each (no path holds NUL).
 */
export function statGenerations(files: readonly string[]): (Generation | null)[] {
  const native = nativeModule();
  if (!native || files.length === 0) return files.map(statGeneration);
  let joined: string;
  try {
    joined = native.statGenerations(files.join('\0'));
  } catch (error) {
    // A NUL inside a path cuts it in two: say so rather than what the pieces gave.
    const cut = files.find((f) => f.includes('\0'));
    throw cut === undefined ? error : new DosnaError(`a path holds NUL: ${JSON.stringify(cut)}`);
  }
  const generations: (Generation | null)[] = joined.split('\0');
  if (generations.length !== files.length) throw new DosnaError(`a path holds NUL: ${JSON.stringify(files.find((f) => f.includes('\0')))}`);
  for (let i = 0; i < generations.length; i++) if (generations[i] === '') generations[i] = null;
  return generations;
}

/** Renames `from` over `to` (atomic on POSIX file systems). */
export async function renameFile(from: string, to: string): Promise<void> {
  if (BLOCKING_IO) fs.renameSync(from, to);
  else await renameAsync(from, to);
}
