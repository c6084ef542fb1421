/**
 * Reading and writing one selection of a dataset: the data path of `get` and `set`, between the
 * connection's chunk cache and the engine.
 */
import { coversChunk, selectionView } from '../chunk-io.js';
import { runTasks, summarize, type RunReport, type TaskRecord } from '../concurrency.js';
import type { Connection } from '../connection.js';
import { dtypeOfArray, type TypedArray } from '../dtypes.js';
import { DTypeError, ShapeError } from '../errors.js';
import { ndarray, type NdArray } from '../ndarray.js';
import { chunkPart, cStrides, formatShape, product, selectionShape, squeezedShape, touchedChunks, type Selection } from '../slicing.js';
import type { ChunkIndex, DatasetMeta } from '../store.js';
import { markCold, markWarm } from '../strided.js';
import { broadcastTo, toStridedView, type Value } from '../values.js';

/** Chunks read through the cache at once by one `get` (bounds the memory a strided read takes). */
const CACHE_READ_CONCURRENCY = 8;

/**
 * Reads selection `sel` of dataset `meta` into a new array or `into`: the chunks the
 * connection's cache holds (or should keep) from it, the others through the engine.
 */
export async function readSelection(
  connection: Connection, meta: DatasetMeta, sel: Selection, chunks?: readonly ChunkIndex[], into?: TypedArray, signal?: AbortSignal,
): Promise<{ array: NdArray<TypedArray>; report?: RunReport }> {
  const session = connection.session;
  let report: RunReport | undefined;
  const length = product(selectionShape(sel));
  if (into !== undefined) {
    if (!ArrayBuffer.isView(into) || dtypeOfArray(into) !== meta.dtype || into instanceof Uint8ClampedArray) {
      throw new DTypeError(`out must be a typed array of the dataset's dtype ${meta.dtype}`);
    }
    if (into.length !== length) {
      throw new ShapeError(`out holds ${into.length} elements but the selection ${formatShape(squeezedShape(sel))} has ${length}`);
    }
  }
  const out = into ?? session.allocate(meta.dtype, length, meta);
  // A new result is in no cache yet: large copies into it may bypass the caches (native/strided.c).
  // An array passed in may be cached, even an earlier result passed back.
  if (into === undefined) markCold(out);
  else markWarm(into);
  let misses = chunks ?? touchedChunks(sel, meta.chunkSize);
  const cache = connection.cache;
  // Short rows of a chunk mean reading it whole anyway: then keep it (see readsThrough).
  const through = cache?.readsThrough(meta) === true && shortRows(sel, out.BYTES_PER_ELEMENT);
  if (cache && (through || misses.some((c) => cache.has(meta, c)))) {
    const strides = cStrides(selectionShape(sel));
    const bpe = out.BYTES_PER_ELEMENT;
    const view = (c: ChunkIndex) => {
      const parts = chunkPart(sel, meta.chunkSize, c)!;
      return { parts, dst: selectionView(out, 0, strides, parts) };
    };
    // The clean cached chunks in one pass (each recorded as a task of the run); the rest one by one.
    const t0 = performance.now();
    const fast: TaskRecord[] = [];
    const served = await cache.readCurrent(meta, misses, (c) => {
      const v = view(c);
      fast.push({ chunk: c, worker: 0, queueMs: 0, ioMs: 0, computeMs: 0, totalMs: 0, bytesRead: product(v.parts.map((p) => p.count)) * bpe, bytesWritten: 0 });
      return v;
    });
    const candidates = misses.filter((c) => !served.has(c) && (through || cache.has(meta, c)));
    // No tasks: runTasks is skipped, unless it must report an abort.
    const run = candidates.length === 0 && !signal?.aborted ? { records: [] } : await runTasks(candidates, async (c) => {
      const { parts, dst } = view(c);
      if (through) await cache.readThrough(meta, c, parts, dst);
      else if (!(await cache.read(meta, c, parts, dst))) return {};
      served.add(c);
      return { bytesRead: product(parts.map((p) => p.count)) * bpe };
    }, { concurrency: CACHE_READ_CONCURRENCY, signal });
    misses = misses.filter((c) => !served.has(c));
    if (misses.length === 0) report = summarize('get', 'cache', CACHE_READ_CONCURRENCY, { wallMs: performance.now() - t0, records: [...fast, ...run.records] });
  }
  if (misses.length > 0) {
    report = await session.run({ kind: 'read', dataset: meta, selection: sel, out }, misses, { operation: 'get', collective: false, signal });
  }
  return { array: ndarray(out, squeezedShape(sel)), report };
}

/**
 * Writes `value` to selection `sel` of dataset `meta`: whole chunks (and most of chunks nothing
 * is buffered for) through the engine at once, the other parts into the connection's cache.
 */
export async function writeSelection(
  connection: Connection, meta: DatasetMeta, sel: Selection, value: Value, chunks?: readonly ChunkIndex[],
): Promise<RunReport | undefined> {
  const source = broadcastTo(toStridedView(value, meta.dtype), squeezedShape(sel), sel.map((a) => a.squeeze));
  let direct = chunks ?? touchedChunks(sel, meta.chunkSize);
  const cache = connection.cache;
  if (cache?.accepts(meta)) {
    const now: ChunkIndex[] = [];
    for (const c of direct) {
      const parts = chunkPart(sel, meta.chunkSize, c);
      if (!parts) continue;
      if (coversChunk(meta, parts)) {
        now.push(c);
        // Replaced outright: whatever was buffered for it is superseded.
        await cache.discardChunk(meta, c);
      } else if (largePart(meta, c, parts) && !cache.has(meta, c)) {
        // Most of a chunk nothing is buffered for: committed now, one read and one write (as
        // HDF5 does), rather than copied into the cache and laid over the chunk later.
        now.push(c);
      } else {
        // Synchronous unless it has to wait (see ChunkCache.write): no turn of the event loop per chunk.
        const waiting = cache.write(meta, c, parts, selectionView(source.data, source.offset, source.strides, parts));
        if (waiting) await waiting;
      }
    }
    direct = now;
  }
  if (direct.length === 0) return undefined;
  return connection.session.run({ kind: 'write', dataset: meta, selection: sel, source }, direct, { operation: 'set', collective: false });
}

/**
 * Whether a selection's rows (its last axis) are short: strided, or under 64 bytes, so a read
 * moves the whole chunk rather than its rows (the threshold of vectored reads, segments.ts).
 */
function shortRows(sel: Selection, bytesPerElement: number): boolean {
  const last = sel[sel.length - 1];
  return Math.abs(last.step) !== 1 || last.count * bytesPerElement < 64;
}

/**
 * Whether a write covers at least half of the cells of chunk `index` that lie in the dataset:
 * then buffering it saves nothing (the chunk will not be filled up by many small writes) and
 * costs a second copy of the cells.
 */
function largePart(meta: DatasetMeta, index: ChunkIndex, parts: readonly { count: number }[]): boolean {
  let written = 1;
  let cells = 1;
  for (let a = 0; a < parts.length; a++) {
    written *= parts[a].count;
    cells *= Math.min(meta.chunkSize[a], meta.shape[a] - index[a] * meta.chunkSize[a]);
  }
  return written * 2 >= cells;
}
