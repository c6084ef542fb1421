/**
 * The chunk cache of a connection (h5py's `rdcc`, TensorStore's cache pool): bounded in bytes,
 * least recently used first out, shared by the connection's datasets. It lives in the thread
 * that calls `get`/`set`, whatever the engine; engines never see it.
 *
 * It is above all a write-back buffer for partial writes. A `set` that covers only part of a
 * chunk copies its cells into the cached chunk and marks them dirty; nothing is read (except
 * from a store in this process's memory, where the new entry starts as a copy of the stored
 * chunk: `#createFromStored`). When the chunk is committed (evicted, flushed, before a
 * collective operation, or in the background as soon as every cell is written), a chunk whose
 * every cell was written is stored as it is; any other goes through the conditional commit of
 * `commit.ts`, which lays only this process's dirty cells over the chunk as it is stored then
 * (or stores the entry itself when it was read and the chunk has not changed since).
 * So many small writes into one chunk cost one chunk write, and a buffered write never clobbers
 * cells that another process wrote in the meantime.
 *
 * Reads see this process's own buffered writes: a cached chunk whose other cells are unknown
 * is completed from the store first. A clean cached chunk is checked against the store's
 * generation before it is used (a stat, a HEAD), so it is never staler than the store; unless
 * the connection's `recheckCachedData` lets reads trust chunks confirmed since a given time
 * (TensorStore's option of that name: `false` trusts every cached chunk, as h5py's and
 * zarr-python's caches do), when another process's writes are seen only once the chunk leaves
 * the cache. This process's own writes are always seen: every path that stores chunks without
 * the cache (whole-chunk sets, load, apply, clear) drops the cached copies first.
 */
import { chunkCopy, chunkFill, commitChunk, readForUpdate } from '../commit.js';
import { giveBack } from '../buffer-pool.js';
import { chunkView } from '../chunk-io.js';
import { KeyedMutex, tryEach } from '../concurrency.js';
import { allocateUninitialized, bytesOf, bytesPerElement, type TypedArray } from '../dtypes.js';
import type { AxisPart } from '../slicing.js';
import type { ChunkIndex, DatasetMeta, Generation, Store } from '../store.js';
import { copyStrided, type StridedView } from '../strided.js';
import { DirtyCells } from './dirty-cells.js';
import { chunkElements, EntryKeys, type Entry } from './entry.js';
import { EntryMemory } from './entry-memory.js';
import { now } from '../recheck.js';
import { newCacheStats, type CacheStats } from './stats.js';

export type { CacheStats } from './stats.js';

/** Where a read wants chunk `index`'s part: which part, and the strided view of the result it goes to. */
type PartView = (index: ChunkIndex) => { parts: readonly AxisPart[]; dst: StridedView };

/** Default size of a connection's chunk cache: 64 MiB, as TensorStore's examples and h5py users with big chunks choose. */
export const DEFAULT_CACHE_BYTES = 64 * 2 ** 20;
/** Commits in flight at once when the cache is flushed or shrinks. */
const COMMIT_CONCURRENCY = 8;



export class ChunkCache {
  readonly capacity: number;
  readonly stats: CacheStats = newCacheStats();
  readonly #store: Store;
  /** Insertion order is recency: the first entry is the least recently used. */
  readonly #entries = new Map<string, Entry>();
  readonly #keys = new EntryKeys();
  readonly #locks = new KeyedMutex();
  /** Where new entries' memory comes from, by each dataset's last commit. */
  readonly #memory: EntryMemory;
  #bytes = 0;
  #shrinking: Promise<void> | undefined;
  /** Write-behind commits under way (see `#writeBehind`), each settled when done. */
  readonly #behind = new Set<Promise<void>>();

  /** Clean chunks confirmed at or after this time (epoch ms) are read without asking the store (see `recheckCachedData`). */
  readonly #trustedSince: number;

  /** `trustedSince`: from when (epoch ms) clean chunks are trusted, as recheck.ts derives it from `recheckCachedData` (never, by default). */
  constructor(store: Store, capacity: number, trustedSince = Infinity) {
    this.#store = store;
    this.#memory = new EntryMemory(store);
    this.capacity = capacity;
    this.#trustedSince = trustedSince;
  }

  /** Whether a read may use the clean entry without asking the store for its generation. */
  #trusted(entry: Entry): boolean {
    return entry.confirmedAt >= this.#trustedSince;
  }

  /** Bytes the cached chunks take now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Whether chunks of this dataset are cached at all: a chunk (and its dirty mask) must fit in the cache. */
  accepts(meta: DatasetMeta): boolean {
    return this.capacity > 0 && chunkElements(meta) * (bytesPerElement(meta.dtype) + 1) <= this.capacity;
  }

  /**
   * Whether chunk `index` is in the cache now (it may be evicted before it is used), or about
   * to be: an operation on it holds or waits for its lock (a write queued behind a commit that
   * then drops the entry), so that later operations go through the cache after it, not around.
   */
  has(meta: DatasetMeta, index: ChunkIndex): boolean {
    return this.#present(this.#keys.of(meta, index));
  }

  /** Whether the entry of `key` is cached, or an operation on it holds or waits for its lock (see `has`). */
  #present(key: string): boolean {
    return this.#entries.has(key) || this.#locks.isHeld(key);
  }

  /** Whether the cache holds writes to chunk `index` not yet committed. */
  isDirty(meta: DatasetMeta, index: ChunkIndex): boolean {
    return (this.#entries.get(this.#keys.of(meta, index))?.dirty ?? null) !== null;
  }

  /**
   * Writes `source` (a strided view over the part `parts` of chunk `index`, already of the
   * dataset's dtype) into the cached chunk, creating it without reading the store, and marks
   * those cells dirty. May commit older chunks to make room.
   *
   * Returns a promise only when it has to wait: for a commit or a load of the chunk under way,
   * or for commits that make room. Otherwise the cells are in the cache when it returns: no
   * other operation on the chunk is running or waiting (its lock is free), and nothing here
   * awaits, so none can start in between. Plane-by-plane writes make nine of these per plane;
   * profiled on ram (256 planes of a 256 x 384 x 384 uint16 volume), taking the lock for each
   * (a promise, a closure, a turn of the event loop) cost as much as copying the cells.
   */
  write(meta: DatasetMeta, index: ChunkIndex, parts: readonly AxisPart[], source: StridedView): Promise<void> | undefined {
    const key = this.#keys.of(meta, index);
    if (this.#locks.isHeld(key)) {
      return this.#locks.run(key, async () => this.#writeCells(key, meta, index, parts, source)).then(() => this.#makeRoom());
    }
    this.#writeCells(key, meta, index, parts, source);
    return this.#makeRoom();
  }

  /** The body of `write`, under the chunk's lock or with the lock free. */
  #writeCells(key: string, meta: DatasetMeta, index: ChunkIndex, parts: readonly AxisPart[], source: StridedView): void {
    const entry = this.#entries.get(key) ?? this.#create(key, meta, index, parts);
    copyStrided(chunkView(entry.data, meta, parts), source);
    entry.dirty ??= new DirtyCells(meta, index);
    const before = entry.dirty.bytes;
    entry.dirty.mark(parts);
    this.#resize(entry, entry.dirty.bytes - before);
    this.#touch(entry);
    if (entry.dirty.filledByBoxes()) this.#writeBehind(entry);
  }

  /**
   * Starts committing a chunk whose every cell is now written (a plane-by-plane volume, after
   * the last plane of a row of chunks, when most often nothing more is coming for it): its
   * write overlaps the sets that follow instead of waiting for an eviction or the flush, and
   * its memory comes back for the chunks they start. Measured by hand, 256 planes into 36
   * chunk files (bench/planes.ts's volume), medians of 20 runs per process, alternating with
   * the build before: hdf5 43.1, 46.0, 47.1 -> 41.6, 43.8, 43.8 ms; zarr 57.7, 64.1 -> 52.4,
   * 58.4 ms (the flush alone had taken 13-26 ms of it). The commit is the same one a flush
   * makes, under the chunk's lock (a set into the chunk meanwhile waits for it). A failed one
   * leaves the chunk dirty: the next flush commits it again and throws if it fails again, so
   * nothing is lost and the error is not swallowed.
   */
  #writeBehind(entry: Entry): void {
    const commit = this.#locks.run(entry.key, async () => {
      if (this.#entries.get(entry.key) !== entry || entry.dirty === null) return;
      try {
        await this.#commit(entry);
      } catch {
        this.stats.writeBehindFailures++;
        return;
      }
      this.stats.writeBehinds++;
      // Done with: its memory goes back to the pool for the chunks the next sets start.
      if (entry.dirty === null) this.#remove(entry);
    });
    const settled: Promise<void> = commit.finally(() => this.#behind.delete(settled));
    this.#behind.add(settled);
  }

  /**
   * For a writer: holds it back while `COMMIT_CONCURRENCY` write-behind commits or more are
   * under way (each writer may have started one more), and commits older chunks when the cache
   * is over its capacity (a promise then).
   */
  #makeRoom(): Promise<void> | undefined {
    if (this.#behind.size >= COMMIT_CONCURRENCY) return Promise.race(this.#behind).then(() => this.#makeRoom());
    return this.#bytes > this.capacity ? this.#shrink() : undefined;
  }

  /**
   * Copies the part `parts` of chunk `index` into `dst` when the chunk is cached (completing it
   * from the store if this process wrote only some of its cells). Resolves `false` when the
   * chunk is not cached, or its clean copy is older than the store's (then it is dropped).
   */
  async read(meta: DatasetMeta, index: ChunkIndex, parts: readonly AxisPart[], dst: StridedView): Promise<boolean> {
    const key = this.#keys.of(meta, index);
    if (!this.#present(key)) return false;
    return this.#locks.run(key, async () => {
      const entry = await this.#usable(key);
      if (!entry) return false;
      copyStrided(dst, chunkView(entry.data, meta, parts));
      this.stats.hits++;
      this.#touch(entry);
      return true;
    });
  }

  /**
   * Serves, in one pass, the chunks of `indices` that the cache holds clean: their generations
   * checked against the store with one call (`chunkGenerationsNow`: one native batch of stats
   * on the file stores, with no promise; `chunkGenerations`: the HEADs at once on object
   * stores), then each part copied out through `view`. The per-chunk path (`read`, `readThrough`) takes a lock, a check and a promise for
   * every chunk; for a line across 8 chunks of 32^3 that bookkeeping cost more than the reads
   * (profiled on hdf5). Returns the chunks served; the others (not cached, partly written, in
   * a commit, or stale: then dropped) are left to the per-chunk path.
   */
  async readCurrent(meta: DatasetMeta, indices: readonly ChunkIndex[], view: PartView): Promise<Set<ChunkIndex>> {
    const served = new Set<ChunkIndex>();
    const ready: { index: ChunkIndex; entry: Entry; generation: Generation | null }[] = [];
    for (const index of indices) {
      const entry = this.#entries.get(this.#keys.of(meta, index));
      if (!entry || entry.dirty !== null || this.#locks.isHeld(entry.key)) continue;
      if (this.#trusted(entry)) this.#serve(entry, meta, index, view, served);
      else ready.push({ index, entry, generation: entry.generation });
    }
    if (ready.length === 0) return served;
    const store = this.#store;
    const chunks = ready.map((r) => r.entry.index);
    const asked = now();
    const current = store.chunkGenerationsNow ? store.chunkGenerationsNow(meta, chunks)
      : store.chunkGenerations ? await store.chunkGenerations(meta, chunks) : await Promise.all(chunks.map((c) => store.chunkGeneration(meta, c)));
    // No await from here on: what is checked below cannot change before it is copied.
    for (let i = 0; i < ready.length; i++) {
      const { index, entry, generation } = ready[i];
      // Changed while the store was asked (written, committed, dropped): the per-chunk path decides.
      if (this.#entries.get(entry.key) !== entry || entry.dirty !== null || entry.generation !== generation || this.#locks.isHeld(entry.key)) continue;
      if (current[i] !== generation) {
        this.stats.stale++;
        this.#remove(entry);
        continue;
      }
      entry.confirmedAt = asked;
      this.#serve(entry, meta, index, view, served);
    }
    return served;
  }

  /** `readCurrent`'s copy of a usable clean entry's part. */
  #serve(entry: Entry, meta: DatasetMeta, index: ChunkIndex, view: PartView, served: Set<ChunkIndex>): void {
    const { parts, dst } = view(index);
    copyStrided(dst, chunkView(entry.data, meta, parts));
    this.stats.hits++;
    this.#touch(entry);
    served.add(index);
  }

  /**
   * Whether reads of short rows of a chunk (which read the whole chunk anyway) keep the chunk
   * here, as h5py's chunk cache does: on stores without cheap byte ranges (a remote store reads
   * the window instead) and not in shared memory (the store is the cache already).
   */
  readsThrough(meta: DatasetMeta): boolean {
    const { capabilities } = this.#store;
    // A compressed chunk is read (and decoded) whole, ranges or not.
    return !capabilities.sharedMemory && (!capabilities.rangeReads || meta.compression !== undefined) && this.accepts(meta);
  }

  /** Like `read`, reading the chunk into the cache first when it is not there. */
  async readThrough(meta: DatasetMeta, index: ChunkIndex, parts: readonly AxisPart[], dst: StridedView): Promise<void> {
    const key = this.#keys.of(meta, index);
    await this.#locks.run(key, async () => {
      let entry = await this.#usable(key);
      if (entry) {
        this.stats.hits++;
      } else {
        const asked = now();
        const { data, generation, bytesRead } = await readForUpdate(this.#store, meta, index);
        this.stats.fills++;
        this.stats.bytesRead += bytesRead;
        entry = { key, meta, index: [...index], data, loaded: true, generation, confirmedAt: asked, dirty: null, bytes: data.byteLength };
        this.#entries.set(key, entry);
        this.#bytes += entry.bytes;
      }
      copyStrided(dst, chunkView(entry.data, meta, parts));
      this.#touch(entry);
    });
    if (this.#bytes > this.capacity) await this.#shrink();
  }

  /**
   * The entry of `key` ready to read (the caller holds its lock): a clean one still what the
   * store holds (else dropped: undefined), a partly written one completed from the store.
   */
  async #usable(key: string): Promise<Entry | undefined> {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.dirty === null) {
      if (this.#trusted(entry)) return entry;
      const asked = now();
      if (await this.#store.chunkGeneration(entry.meta, entry.index) !== entry.generation) {
        this.stats.stale++;
        this.#remove(entry);
        return undefined;
      }
      entry.confirmedAt = asked;
    } else if (!entry.loaded) {
      await this.#load(entry);
    }
    return entry;
  }

  /** Commits every dirty chunk (of the datasets `which` selects); clean chunks stay cached. */
  async flush(which: (meta: DatasetMeta) => boolean = () => true): Promise<void> {
    // A write-behind commit under way holds its chunk's lock and leaves the chunk dirty until it
    // ends (dirty still if it failed): the lock below waits for it.
    const dirty = [...this.#entries.values()].filter((e) => e.dirty !== null && which(e.meta));
    await tryEach(dirty, COMMIT_CONCURRENCY, (entry) => this.#locks.run(entry.key, async () => {
      if (this.#entries.get(entry.key) === entry) await this.#commit(entry);
    }));
  }

  /**
   * Forgets the cached chunks of the datasets `which` selects, committing nothing: for chunks
   * that are about to be replaced or removed by other means (a load, a clear, a delete).
   * Waits for commits of those chunks already under way.
   */
  async discard(which: (meta: DatasetMeta) => boolean): Promise<void> {
    const doomed = [...this.#entries.values()].filter((e) => which(e.meta));
    await Promise.all(doomed.map((entry) => this.#locks.run(entry.key, async () => {
      if (this.#entries.get(entry.key) === entry) this.#remove(entry);
    })));
  }

  /** Forgets chunk `index` of `meta` (see `discard`). */
  async discardChunk(meta: DatasetMeta, index: ChunkIndex): Promise<void> {
    const key = this.#keys.of(meta, index);
    if (!this.#present(key)) return;
    await this.#locks.run(key, async () => {
      const entry = this.#entries.get(key);
      if (entry) this.#remove(entry);
    });
  }

  // -------------------------------------------------------------------------------------------

  /** A new entry for a write of `parts` into chunk `index`. */
  #create(key: string, meta: DatasetMeta, index: ChunkIndex, parts: readonly AxisPart[]): Entry {
    const fromStored = this.#memory.startsFromStored(meta, parts) ? this.#createFromStored(key, meta, index) : undefined;
    if (fromStored) return fromStored;
    const valid = meta.chunkSize.map((c, a) => Math.min(c, meta.shape[a] - index[a] * c));
    const edge = valid.some((n, a) => n < meta.chunkSize[a]);
    // Only an edge chunk needs initializing: its padding is never written by a set, and is
    // stored as the fill value. Other cells are valid only once written (the dirty mask).
    const data = this.#memory.take(meta) ?? allocateUninitialized(meta.dtype, chunkElements(meta));
    if (edge) chunkFill(data, meta);
    const entry: Entry = { key, meta, index: [...index], data, loaded: false, generation: null, confirmedAt: -Infinity, dirty: null, bytes: data.byteLength };
    this.#entries.set(key, entry);
    this.#bytes += entry.bytes;
    return entry;
  }

  /**
   * A new entry holding a copy of the chunk as stored (in shared memory, with its generation),
   * for the write about to go into it; `undefined` when nothing is stored. Its commit then
   * stores that very buffer if nobody committed the chunk meanwhile (the candidate of
   * `commitChunk`), where an entry of the written cells only is completed at the commit: the
   * stored chunk copied into a new buffer and the written cells copied over it again, long
   * after they were last in the processor's caches. Copying the stored chunk costs about what the entry's own buffer would (the store
   * copies a plain entry into shared memory when it keeps it), so a chunk that ends up written
   * whole costs no more. Measured by hand on ram (the block [36:180, 89:250, 7:200] of a 256^3
   * float32 cube set and flushed, medians of 100 sets, three processes per build, alternating),
   * cpu engine: 9.9-10.3 against 11.8-12.0 ms in 32^3 chunks, 10.2-11.5 against 10.9-13.4 in
   * 64^3, 13.9-14.2 against 16.5-16.9 in 128^3; worker-pool: 9.6-11.0 against 10.7-11.8,
   * 9.6-10.1 against 11.1-11.9, 14.5-15.4 against 16.3-17.8 (zarr-python's MemoryStore on the
   * same machine: 11.5, 8.7-8.9 and 19.3 ms). A copy of only the stored cells the write does not
   * cover (two slabs per axis) was no faster: their short rows cost what the bytes saved.
   */
  #createFromStored(key: string, meta: DatasetMeta, index: ChunkIndex): Entry | undefined {
    const asked = now();
    const { bytes, generation } = this.#store.readChunkVersionNow!(meta, index);
    // Nothing stored: nothing to copy, and a commit of the written cells only reads nothing either.
    if (!bytes) return undefined;
    const data = chunkCopy(meta, this.#store, bytes);
    this.stats.loads++;
    this.stats.bytesRead += bytes.byteLength;
    const entry: Entry = { key, meta, index: [...index], data, loaded: true, generation, confirmedAt: asked, dirty: null, bytes: data.byteLength };
    this.#entries.set(key, entry);
    this.#bytes += entry.bytes;
    return entry;
  }

  /** Counts `delta` more bytes against the entry and the cache. */
  #resize(entry: Entry, delta: number): void {
    entry.bytes += delta;
    this.#bytes += delta;
  }

  /** Forgets the entry's dirty cells (after a commit), giving their memory back. */
  #clean(entry: Entry): void {
    if (!entry.dirty) return;
    this.#resize(entry, -entry.dirty.bytes);
    entry.dirty.release();
    entry.dirty = null;
  }

  #setData(entry: Entry, data: TypedArray): void {
    if (entry.data !== data) giveBack(entry.data);
    this.#bytes += data.byteLength - entry.data.byteLength;
    entry.bytes += data.byteLength - entry.data.byteLength;
    entry.data = data;
  }

  #touch(entry: Entry): void {
    this.#entries.delete(entry.key);
    this.#entries.set(entry.key, entry);
  }

  /** Drops the entry; its buffers go back to the pool unless the store keeps them (`keep`). */
  #remove(entry: Entry, keep = false): void {
    if (this.#entries.get(entry.key) !== entry) return;
    this.#entries.delete(entry.key);
    this.#bytes -= entry.bytes;
    if (!keep) giveBack(entry.data);
    entry.dirty?.release();
  }

  /** Completes a partly written chunk from the store: the stored chunk with the dirty cells over it. */
  async #load(entry: Entry): Promise<void> {
    const asked = now();
    const { data, generation, bytesRead } = await readForUpdate(this.#store, entry.meta, entry.index);
    this.stats.bytesRead += bytesRead;
    this.stats.loads++;
    entry.dirty?.overlay(data, entry.data);
    this.#setData(entry, data);
    entry.loaded = true;
    entry.generation = generation;
    entry.confirmedAt = asked;
  }

  /** Stores the entry's dirty cells (the caller holds its lock); the entry is clean afterwards. */
  async #commit(entry: Entry): Promise<void> {
    const { dirty, meta, index } = entry;
    if (dirty === null) return;
    const store = this.#store;
    const asked = now();
    const whole = dirty.coversAll();
    let generation: Generation;
    let data: TypedArray;
    if (whole) {
      // Every cell is this process's: nothing of anyone else's can be lost, so no read.
      generation = await store.writeChunk(meta, index, [bytesOf(entry.data)]);
      data = entry.data;
      this.stats.blindCommits++;
      this.stats.bytesWritten += data.byteLength;
    } else {
      ({ generation, data } = await commitChunk(store, meta, index, {
        overlay: (chunk) => dirty.overlay(chunk, entry.data),
        candidate: entry.loaded ? { data: entry.data, expected: entry.generation } : undefined,
        stats: this.stats,
        keep: true,
      }));
    }
    this.stats.commits++;
    this.#memory.noteCommit(meta.name, whole);
    if (store.capabilities.sharedMemory) {
      // The store keeps the committed buffer itself (a shared one, which the pool never takes):
      // the cache must not write into it again. A plain buffer of the cache's goes to the pool.
      this.#remove(entry);
      return;
    }
    this.#clean(entry);
    this.#setData(entry, data);
    entry.loaded = true;
    entry.generation = generation;
    entry.confirmedAt = asked;
  }

  /** Commits least recently used chunks until the cache is back under its capacity. */
  #shrink(): Promise<void> {
    this.#shrinking ??= (async () => {
      try {
        while (this.#bytes > this.capacity) {
          const victims: Entry[] = [];
          let freed = 0;
          for (const entry of this.#entries.values()) {
            if (this.#bytes - freed <= this.capacity || victims.length >= COMMIT_CONCURRENCY) break;
            if (this.#locks.isHeld(entry.key)) continue; // in use right now: the most recent anyway
            victims.push(entry);
            freed += entry.bytes;
          }
          if (victims.length === 0) return;
          await Promise.all(victims.map((entry) => this.#locks.run(entry.key, async () => {
            if (this.#entries.get(entry.key) !== entry) return;
            if (entry.dirty !== null) this.stats.evictions++;
            await this.#commit(entry);
            this.#remove(entry);
          })));
        }
      } finally {
        this.#shrinking = undefined;
      }
    })();
    return this.#shrinking;
  }
}
