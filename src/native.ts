/**
 * dosna's optional native module (native/*.c, built at install by scripts/build-native.mjs):
 * the strided row copy under every read and write of a chunk's region, at memory speed where
 * JavaScript's loops reach about a third of it, and the gaussian filter's correlation pass,
 * vectorized by the C compiler (same results, bit for bit), glibc malloc's policy
 * (malloc-policy.ts says why), V8's count of shared memory (shared-memory.ts) and chunk files
 * opened, read or written and closed in one call (backends/hdf5/files.ts). Where the module
 * is not built (no C compiler at install) or `DOSNA_NATIVE=0` is set, the JavaScript loops in
 * strided.ts and kernels/gaussian.ts do the same work; {@link nativeStatus} says which one runs, so a slower
 * installation is never silent.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyMallocPolicy, type MallocPolicy } from './malloc-policy.js';

/** The native module's functions (see native/strided.c for the plan's layout). */
export interface NativeModule {
  copyRows(dst: ArrayBufferView, src: ArrayBufferView, plan: Float64Array): boolean;
  /** Rows of several sources end to end in `dst`, each row of `dst` written at once (native/strided.c). */
  copyRowsJoined(dst: ArrayBufferView, sources: readonly ArrayBufferView[], plan: Float64Array): boolean;
  /** One gaussian correlation pass along the middle axis of an (outer, n, inner) block (native/gaussian.c). */
  correlateAxis<T extends Float32Array | Float64Array>(input: T, out: T, outer: number, n: number, inner: number, weights: Float64Array): void;
  /** Sets glibc malloc's mmap and trim thresholds (native/malloc.c); false where there is no glibc. */
  tuneMalloc(mmapThreshold: number, trimThreshold: number): boolean;
  /** Maps no block alone (M_MMAP_MAX 0, native/malloc.c); false where there is no glibc. */
  keepLargeBlocks(): boolean;
  /** The bytes malloc holds free; when more than `keepBytes`, gives every free page back (native/malloc.c). -1 without glibc. */
  trimMalloc(keepBytes: number): number;
  /** Tells V8 of `deltaBytes` more (or fewer) bytes kept alive outside its heap (native/external-memory.c); its new total. */
  adjustExternalMemory(deltaBytes: number): number;
  /** Swaps two files' names in one step (native/exchange.c); false where that cannot be done here. */
  exchangeFiles(a: string, b: string): Promise<boolean>;
  /**
   * A SharedArrayBuffer over a block of the native pool of freed buffers of its size (zeroed or
   * not), the block going back to the pool when V8 frees the buffer (native/shared-pool.c);
   * undefined where Node-API cannot make one.
   */
  recycledSharedBuffer(byteLength: number, zeroed: boolean): SharedArrayBuffer | undefined;
  /** The pool's free bytes, and how many buffers it made from reused and from new memory. */
  sharedPoolStats(): SharedPoolStats;
  /**
   * Opens `path`, fills `views` by runs (`counts[r]` views from byte `positions[r]`), and closes
   * it, in one step (native/file-io.c): a Promise of the outcome, or the outcome itself when
   * `sync`. null when there is no such file. With `then`, a read that went as expected is
   * copied out on the same thread (`copied`).
   */
  readFileRanges<S extends boolean>(path: string, positions: Float64Array, counts: Uint32Array, views: readonly ArrayBufferView[], withGeneration: boolean, sync: S, then?: CopyAfterRead): S extends true ? FileRead | null : Promise<FileRead | null>;
  /**
   * Creates (or truncates) `path` with the views' bytes, stamps its times with `stampSeconds`
   * and closes it, in one step (native/file-io.c); its generation, "inode:mtimeNs".
   */
  writeNewFile<S extends boolean>(path: string, views: readonly ArrayBufferView[], stampSeconds: number, sync: S): S extends true ? string : Promise<string>;
  /**
   * A chunk file's commit in one step (native/commit-file.c): the views written to a new
   * unnamed file in `lock`'s folder (O_TMPFILE) with `owner` noted on it and its times set to
   * `stampSeconds`, linked as `lock` (the chunk's lock, an exclusive create), then, holding it,
   * `folder`'s inode checked against `folderIno` and (unless `expected` is undefined) `file`'s
   * generation against `expected` (null: no file), and then the lock renamed over `file`
   * (`replace` 'rename'), swapped with it and the old file removed ('exchange', which renames
   * where there is no old file, the old file has other names, or there is no swap), or kept
   * ('hold'). The new generation when the checks
   * held (with 'hold' the lock is then still held); else a status, nothing left behind: 0
   * `expected` did not hold, 1 the lock is held, 2 the file system cannot (no O_TMPFILE,
   * extended attributes or /proc), 3 `folder` changed.
   */
  commitNewFile<S extends boolean>(
    lock: string, views: readonly ArrayBufferView[], stampSeconds: number, owner: string, folder: string, folderIno: string,
    file: string, expected: string | null | undefined, replace: 'hold' | 'rename' | 'exchange', sync: S,
  ): S extends true ? string | number : Promise<string | number>;
  /** How many of this process's `commitNewFile` calls put their file in place by a rename and by a swap. */
  commitCounts(): { renamed: number; swapped: number };
  /** The owner `commitNewFile` noted on a file (a lock), or null when there is none or no file. */
  fileOwner(path: string): string | null;
  /**
   * Marks a folder as the top of a hierarchy (FS_TOPDIR_FL, `chattr +T`: its subfolders are
   * placed apart, native/folder-flags.c); false where that cannot be done.
   */
  spreadSubfolders(path: string): boolean;
  /**
   * The generation ("inode:mtimeNs") of each file, empty where there is none, on the calling
   * thread (native/file-io.c): the paths and the generations each one string, joined by NUL.
   */
  statGenerations(joinedPaths: string): string;
  /**
   * Reads the data parts of many chunk files of one byte template on the calling thread, in one
   * call (native/templated-files.c): file i's bytes from `starts[i]` of its data into its
   * `counts[i]` views (the next ones of `views`); `outcome[i]` gets 1 when read, 0 when there is no
   * such file, -1 when the file is not of the template. Descriptors stay open between calls while
   * the files are unchanged (native/open-files.c).
   */
  readTemplatedFiles(paths: readonly string[], prefix: Uint8Array, suffix: Uint8Array, dataBytes: number, starts: Float64Array, counts: Uint32Array, views: readonly ArrayBufferView[], outcome: Float64Array): void;
  /** Closes the chunk files' descriptors kept open of `path`, and with `under` of every path under it (native/open-files.c); how many. */
  forgetOpenFiles(path: string, under: boolean): number;
  /** How many chunk files' descriptors are kept open now, and how many may be (native/open-files.c). */
  openFilesStats(): { open: number; capacity: number };
}

/**
 * What `readFileRanges` found: the bytes read (the runs in order, up to and including the first
 * one the file's end cut short), and the generation of the file read when asked.
 */
export interface FileRead {
  readonly bytes: number;
  readonly generation?: string;
  /** Whether `then`'s copy was made. */
  readonly copied: boolean;
}

/**
 * A copy `readFileRanges` makes right after its read, on the thread that read, when the read
 * moved exactly `bytes` and each of `checks`' views ([view, expected, ...]) begins with its
 * expected bytes: the rows of `plan` (`nativeCopyPlan`, native/strided.c's layout) from `src`
 * to `dst`.
 */
export interface CopyAfterRead {
  readonly bytes: number;
  readonly checks: readonly ArrayBufferView[];
  readonly dst: ArrayBufferView;
  readonly src: ArrayBufferView;
  readonly plan: Float64Array;
}

/** What the native pool of shared buffers holds and has done (native/shared-pool.c). */
export interface SharedPoolStats {
  readonly pooledBytes: number;
  readonly reused: number;
  readonly made: number;
}

/** Whether dosna's native copy is in use, and why not when it is not. */
export interface NativeStatus {
  readonly loaded: boolean;
  /** The module's file when loaded; otherwise why it is not. */
  readonly detail: string;
  /** Whether dosna set malloc's policy for this process (src/malloc-policy.ts), and which. */
  readonly malloc: MallocPolicy;
}

const MODULE_FILE = join('native', 'build', 'Release', 'dosna_native.node');

const MALLOC_UNTOUCHED: MallocPolicy = { tuned: false, detail: 'the native module is not loaded' };

function load(): { module?: NativeModule; status: NativeStatus } {
  if (process.env.DOSNA_NATIVE === '0') return { status: { loaded: false, detail: 'disabled by DOSNA_NATIVE=0', malloc: MALLOC_UNTOUCHED } };
  // This file runs from src/ (tsx), dist/ (the package) or build/src/ (the benchmarks):
  // the package root is one or two levels up.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let level = 0; level < 3; level++, dir = dirname(dir)) {
    const file = join(dir, MODULE_FILE);
    if (!existsSync(file)) continue;
    try {
      const module = createRequire(import.meta.url)(file) as NativeModule;
      const missing = (['copyRows', 'copyRowsJoined', 'correlateAxis', 'tuneMalloc', 'keepLargeBlocks', 'trimMalloc', 'adjustExternalMemory', 'exchangeFiles', 'recycledSharedBuffer', 'sharedPoolStats', 'readFileRanges', 'writeNewFile', 'commitNewFile', 'commitCounts', 'fileOwner', 'spreadSubfolders', 'statGenerations', 'readTemplatedFiles', 'forgetOpenFiles', 'openFilesStats'] as const).filter((name) => typeof module[name] !== 'function');
      if (missing.length) throw new Error(`${missing.join(', ')} missing (an older build? npm rebuild dosna)`);
      return { module, status: { loaded: true, detail: file, malloc: applyMallocPolicy(module, process.env) } };
    } catch (error) {
      return { status: { loaded: false, detail: `${file} did not load: ${(error as Error).message}`, malloc: MALLOC_UNTOUCHED } };
    }
  }
  return { status: { loaded: false, detail: `${MODULE_FILE} is not built (npm ci builds it; it needs a C compiler)`, malloc: MALLOC_UNTOUCHED } };
}

const loaded = load();
let enabled = true;

/** The native module, or undefined where the JavaScript loops copy instead. */
export function nativeModule(): NativeModule | undefined {
  return enabled ? loaded.module : undefined;
}

/**
 * V8's external memory count, to report shared buffers to (src/shared-memory.ts), or undefined
 * without the module. Not switched off with the native copy: a buffer reported when made must be
 * taken back when collected.
 */
export function externalMemoryCounter(): ((deltaBytes: number) => number) | undefined {
  return loaded.module?.adjustExternalMemory;
}

/**
 * The native pool of shared buffers (src/shared-memory.ts), or undefined without the module.
 * Like the counter above, not switched off with the native copy.
 */
export function sharedBufferPool(): Pick<NativeModule, 'recycledSharedBuffer' | 'sharedPoolStats'> | undefined {
  return loaded.module;
}

/**
 * Turns the native copy off (or back on) in this process, so tests can check the JavaScript
 * loops against it and the benchmarks can measure both in one run.
 * @internal
 */
export function setNativeEnabled(on: boolean): void {
  enabled = on;
}

/**
 * Whether dosna's native copy is in use in this process, and why not when it is not
 * (`DOSNA_NATIVE=0`, or the module was not built at install). Results are the same either
 * way; only the speed of reads and writes differs.
 */
export function nativeStatus(): NativeStatus {
  return loaded.status;
}
