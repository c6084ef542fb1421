/**
 * Running chunk functions on chunks: `map` (into another dataset, with a halo), `apply` (in
 * place, committed only over the chunk it read, so no concurrent write is lost) and the
 * per-chunk part of a reduction. A throw in the function becomes a KernelError naming the chunk.
 */
import { createHash } from 'node:crypto';
import { ndarray, type NdArray } from './ndarray.js';
import { allocateUninitialized, bytesOf, type TypedArray } from './dtypes.js';
import { giveBack } from './buffer-pool.js';
import { ConflictError, KernelError, ShapeError } from './errors.js';
import { chunkCopy, chunkFill, MAX_COMMIT_ATTEMPTS } from './commit.js';
import { gatherPadded, paddedAxis, type PaddedAxis } from './halo.js';
import { resolveKernel, type ChunkContext, type Kernel } from './kernel.js';
import { cStrides, formatShape, product, type Selection } from './slicing.js';
import type { ChunkIndex, ChunkVersion, DatasetMeta, Generation, Store } from './store.js';
import { copyStrided, type StridedView } from './strided.js';
import { toStridedView } from './values.js';
import { boxSelection, chunkArray, chunkOrigin, readRegion, timed, validShape, writeWholeChunk, type ChunkStats } from './chunk-io.js';
import type { MapJob, ReduceJob } from './chunk-ops.js';

/** What an in-place commit is about to do: the generation it replaces, and the SHA-256 of the bytes it writes. */
export interface CommitRecord { readonly generation: Generation | null; readonly digest: string }

/** One run's notes of in-place commits, by chunk (kept outside the store, e.g. in Redis). */
export interface CommitLedger {
  get(index: ChunkIndex): Promise<CommitRecord | undefined>;
  set(index: ChunkIndex, record: CommitRecord): Promise<void>;
}

const digestOf = (bytes: Uint8Array | null | undefined): string => createHash('sha256').update(bytes ?? new Uint8Array(0)).digest('hex');

/**
 * What a map task reads: the chunk grown by the halo, as padded axes (dataset coordinates of
 * every padded cell, reflected at the edges) and the box of the dataset that covers them.
 * `chunkReads` and `mapChunk` both use it, so a worker is always handed what it will read.
 */
export function mapInput(input: DatasetMeta, index: ChunkIndex, halo: readonly number[]): { axes: PaddedAxis[] | null; box: Selection } {
  const valid = validShape(input, index);
  const origin = chunkOrigin(input, index);
  if (halo.every((h) => h === 0)) return { axes: null, box: boxSelection(origin, valid) };
  const axes = valid.map((n, a) => paddedAxis(origin[a], n, halo[a], input.shape[a]));
  return { axes, box: axes.map((ax) => ({ start: ax.lo, step: 1, count: ax.hi - ax.lo, squeeze: false })) };
}

/** Whether a map job writes back into its own input (`apply`). */
function inPlace(job: MapJob): boolean {
  return job.output.name === job.input.name && job.output.uid === job.input.uid;
}

export async function mapChunk(store: Store, job: MapJob, index: ChunkIndex, stats: ChunkStats, ledger?: CommitLedger): Promise<void> {
  if (!inPlace(job) || job.halo.some((h) => h > 0)) {
    const { axes, box } = mapInput(job.input, index, job.halo);
    const valid = validShape(job.input, index);
    // A region that is a whole chunk of the output as stored (no halo, every cell of the chunk,
    // the output's dtype) goes into shared memory when the store keeps its chunks there: a
    // chunk function that works in place (as the gaussian kernels do) returns it, and the store
    // adopts it without another copy.
    const wholeOutputChunk = !axes && job.output.dtype === job.input.dtype && valid.every((n, a) => n === job.output.chunkSize[a]);
    const region = await readRegion(store, job.input, box, stats, wholeOutputChunk && store.capabilities.sharedMemory === true);
    const data = axes ? gatherPadded(job.input.dtype, region, axes) : region;
    // Gathered, the region is this task's alone and dead: its memory serves the next region.
    // (The chunk function's input is never recycled: it may keep it.)
    if (data !== region) giveBack(region);
    const shape = axes ? axes.map((ax) => ax.coords.length) : valid;
    const view = await runKernel(job, index, data, shape, stats);
    await writeWholeChunk(store, job.output, index, cropToChunk(view, shape, valid, job.halo), stats);
    return;
  }
  // In place: the result replaces the chunk only if nobody changed it since it was read;
  // otherwise the kernel runs again on what is stored now, so no concurrent write is lost.
  const meta = job.input;
  const valid = validShape(meta, index);
  const interior = valid.every((n, a) => n === meta.chunkSize[a]);
  for (let attempt = 1; ; attempt++) {
    const version = await timed(stats, 'ioMs', () => store.readChunkVersion(meta, index));
    if (version.bytes) stats.bytesRead += version.bytes.byteLength;
    if (ledger && await committedBefore(ledger, index, version)) return;
    // The kernel gets the chunk's own cells, C order; an interior chunk is exactly its buffer:
    // the bytes read when they are this task's own, else one copy (in shared memory when the
    // store keeps chunks there, so it adopts the result without another copy).
    let data: TypedArray;
    if (interior && (version.bytes || store.capabilities.sharedMemory)) {
      data = store.capabilities.sharedMemory ? chunkCopy(meta, store, version.bytes) : chunkArray(meta, version.bytes!);
    } else {
      data = allocateUninitialized(meta.dtype, product(valid));
      const full = version.bytes ? chunkArray(meta, version.bytes) : chunkCopy(meta, store, undefined); // only read from
      copyStrided({ data, offset: 0, shape: valid, strides: cStrides(valid) }, { data: full, offset: 0, shape: valid, strides: cStrides(meta.chunkSize) });
    }
    const view = await runKernel(job, index, data, valid, stats);
    let result = cropToChunk(view, valid, valid, job.halo);
    if (!interior) {
      // An edge chunk keeps its stored cells past the shape this process knows: another process
      // may have grown the dataset and written them (see coversChunk).
      const whole = chunkCopy(meta, store, version.bytes);
      const chunkStrides = cStrides(meta.chunkSize);
      copyStrided({ data: whole, offset: 0, shape: valid, strides: chunkStrides }, result);
      result = { data: whole, offset: 0, shape: [...meta.chunkSize], strides: chunkStrides };
    }
    const written = ledger
      ? await commitNoted(store, meta, index, result, version.generation, ledger, stats)
      : await writeWholeChunk(store, meta, index, result, stats, version.generation);
    if (written) return;
    if (attempt >= MAX_COMMIT_ATTEMPTS) {
      throw new ConflictError(`chunk [${index.join(', ')}] of dataset ${JSON.stringify(meta.name)} kept changing while apply ran on it (${attempt} attempts)`, [...index]);
    }
  }
}

/**
 * Whether an earlier attempt at this chunk already committed: it noted the generation it
 * replaced and the digest of what it wrote, and the chunk now holds exactly those bytes under
 * another generation. (Under the noted generation it still holds its input: not committed.)
 */
async function committedBefore(ledger: CommitLedger, index: ChunkIndex, version: ChunkVersion): Promise<boolean> {
  const note = await ledger.get(index);
  return note !== undefined && note.generation !== version.generation && note.digest === digestOf(version.bytes);
}

/**
 * An in-place commit for engines that may run a task twice: the whole chunk's bytes are
 * assembled, noted in the ledger (the generation they replace and their digest), then written
 * only if the chunk is still that generation. A run of the task after a commit whose
 * acknowledgement was lost finds the note and the bytes, and does not apply the kernel again.
 */
async function commitNoted(
  store: Store, meta: DatasetMeta, index: ChunkIndex, view: StridedView, expected: Generation | null, ledger: CommitLedger, stats: ChunkStats,
): Promise<boolean> {
  const interior = validShape(meta, index).every((n, a) => n === meta.chunkSize[a]);
  const buf = allocateUninitialized(meta.dtype, product(meta.chunkSize));
  if (!interior) chunkFill(buf, meta);
  copyStrided({ data: buf, offset: 0, shape: view.shape, strides: cStrides(meta.chunkSize) }, view);
  const bytes = bytesOf(buf);
  await timed(stats, 'ioMs', () => ledger.set(index, { generation: expected, digest: digestOf(bytes) }));
  const written = await timed(stats, 'ioMs', () => store.writeChunkIf(meta, index, [bytes], expected));
  stats.bytesWritten += bytes.byteLength;
  return written !== undefined;
}

/** Runs the job's kernel on one chunk's data; returns its result (or the data, changed in place). */
async function runKernel(job: MapJob, index: ChunkIndex, data: TypedArray, shape: readonly number[], stats: ChunkStats): Promise<StridedView> {
  const chunk = ndarray(data, shape);
  const result = await callKernel(job.kernel, job.input, index, chunk, job.halo, job.args, stats);
  return toStridedView((result ?? chunk) as Parameters<typeof toStridedView>[0], job.output.dtype);
}

/** Reads a chunk's own cells (C order) and keeps what the kernel returns for them. */
export async function reduceChunk(store: Store, job: ReduceJob, index: ChunkIndex, stats: ChunkStats): Promise<void> {
  const valid = validShape(job.dataset, index);
  const data = await readRegion(store, job.dataset, boxSelection(chunkOrigin(job.dataset, index), valid), stats);
  const halo = valid.map(() => 0);
  stats.partial = await callKernel(job.kernel, job.dataset, index, ndarray(data, valid), halo, job.args, stats);
}

/**
 * Told when a chunk function starts (`true`) and returns or throws (`false`) on this thread: the
 * worker-pool's worker notes it where the main thread can read it, so that if the thread dies
 * (a chunk function that calls `process.exit`, runs out of memory) the error names that chunk.
 */
let kernelWatch: ((running: boolean) => void) | undefined;

/** Sets (or, with `undefined`, clears) this thread's {@link kernelWatch}. */
export function watchKernels(watch: ((running: boolean) => void) | undefined): void {
  kernelWatch = watch;
}

/**
 * Calls a kernel on one chunk of `input` (its data, maybe grown by a halo) with the chunk's
 * context; a throw becomes a `KernelError` naming the chunk. The time it takes is compute time.
 */
async function callKernel(
  kernel: Kernel, input: DatasetMeta, index: ChunkIndex, chunk: NdArray<TypedArray>, halo: readonly number[], args: unknown, stats: ChunkStats,
): Promise<unknown> {
  const ctx: ChunkContext = {
    index: [...index], origin: chunkOrigin(input, index), shape: validShape(input, index), halo: [...halo], args,
    dataset: { name: input.name, shape: input.shape, dtype: input.dtype, chunkSize: input.chunkSize },
  };
  const fn = await resolveKernel(kernel);
  const fail = (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    return new KernelError(`chunk function failed on chunk [${index.join(', ')}]: ${message}`, [...index], { cause: error });
  };
  // Timed synchronously: awaiting a plain value would let other tasks run inside the measurement.
  const t0 = performance.now();
  let result: Awaited<ReturnType<typeof fn>>;
  kernelWatch?.(true);
  try {
    const returned = fn(chunk, ctx);
    result = returned instanceof Promise ? await returned : returned;
  } catch (error) {
    throw fail(error);
  } finally {
    kernelWatch?.(false);
    stats.computeMs += performance.now() - t0;
  }
  return result;
}

/**
 * The chunk's own cells of a kernel's result, which may have the padded or the chunk's shape.
 * A flat typed array of exactly that many elements counts as C-order data of that shape, so
 * self-contained kernels can return `Float32Array.from(...)` without building an ndarray.
 */
function cropToChunk(view: StridedView, padded: readonly number[], valid: readonly number[], halo: readonly number[]): StridedView {
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  if (view.shape.length === 1 && valid.length > 1 && view.strides[0] === 1) {
    const n = view.shape[0];
    if (n === product(valid)) view = { ...view, shape: valid, strides: cStrides(valid) };
    else if (n === product(padded)) view = { ...view, shape: padded, strides: cStrides(padded) };
  }
  if (same(view.shape, valid)) return view;
  if (same(view.shape, padded)) {
    let offset = view.offset;
    for (let a = 0; a < halo.length; a++) offset += halo[a] * view.strides[a];
    return { data: view.data, offset, shape: valid, strides: view.strides };
  }
  throw new ShapeError(
    `chunk function returned shape ${formatShape(view.shape)}; expected the chunk's ${formatShape(valid)}`
    + (same(padded, valid) ? '' : ` or the padded ${formatShape(padded)}`),
  );
}
