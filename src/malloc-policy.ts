/**
 * glibc malloc's policy for a process that holds dosna's chunks and big arrays.
 *
 * Node allocates every ArrayBuffer and SharedArrayBuffer with glibc's malloc, and V8 frees
 * them in batches, when a garbage collection finds them dead. glibc's default policy returns
 * the top of its heap to the kernel whenever more than the trim threshold (128 KiB at first,
 * raised as large blocks come and go) lies free there, and maps every block over the mmap
 * threshold on its own. A batch of freed 1 MiB chunks is therefore handed back, and the next
 * batch of chunks is faulted in again page by page and zeroed by the kernel. Measured on
 * the benchmark machine (with huge pages, as dosna's processes run), loading the 64 MiB cube
 * into `ram` took 75-100 ms over the first rounds of a process with glibc's defaults and
 * 25-50 ms with the thresholds below, settling at 22-35 ms either way; what remains are
 * spikes of ~130 ms, with or without them, while V8 has not yet freed the replaced chunks
 * and the heap grows into memory never touched before (numpy, freeing each array at once,
 * reuses warm memory and never sees either).
 *
 * So, when the native module loads, it fixes the mmap threshold at glibc's own ceiling for
 * 64-bit (32 MiB: chunks come from the heap) and the trim threshold at 256 MiB (the most free
 * memory the top of the heap keeps for reuse instead of returning it). That is the steady state
 * glibc's adaptive policy drifts towards for large blocks anyway, fixed from the start.
 *
 * Arrays bigger than that ceiling (a `get` of a whole 64 MiB cube) glibc maps alone, fresh from
 * the kernel, and unmaps when freed, whatever the threshold: every such result was zeroed by the
 * kernel page by page as the gather first wrote it, in chunk order, long after the page was
 * zeroed. Profiled, the kernel's page clearing took as many samples as the copy itself, and a
 * `get` of the cube in 64^3 chunks on ram took 28-91 ms where the same read into a reused array
 * took 12-13 (numpy pays it too: 17.8-19.0 ms against 11.7-12.3). So no block is mapped alone
 * (M_MMAP_MAX 0): a freed big array stays in the heap, and the next one of its size reuses its
 * warm pages (measured: 12-14 ms, as into a reused array). glibc still maps memory when the heap
 * cannot grow (and for worker threads' arenas, past their 64 MiB heaps).
 *
 * What the heap keeps that way would stay with the process (glibc gives back only the top of
 * its heap, and a big array freed below a small live block is not at the top). So after every
 * full garbage collection (when V8 frees array buffers in bulk), if malloc holds more than
 * {@link FREE_HEAP_LIMIT} free, every free page goes back to the kernel (malloc_trim): a loop
 * reusing a few big arrays keeps them warm, and a process that read one huge array and dropped
 * it does not keep its memory.
 *
 * A choice the process was started with stands: `MALLOC_MMAP_THRESHOLD_`,
 * `MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_MAX_`, or any of the three in `GLIBC_TUNABLES`;
 * `DOSNA_NATIVE=0` leaves malloc alone too.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';

/** The mmap threshold dosna asks for: glibc's largest on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX). */
export const MMAP_THRESHOLD = 32 * 2 ** 20;
/** The trim threshold dosna asks for: how much free heap may stay mapped for reuse. */
export const TRIM_THRESHOLD = 256 * 2 ** 20;
/** Free heap that may stay after a full garbage collection; beyond it all free pages go back (twice the trim threshold). */
export const FREE_HEAP_LIMIT = 2 * TRIM_THRESHOLD;

/** The native module's calls on malloc (native/malloc.c). */
export interface MallocControls {
  tuneMalloc(mmapThreshold: number, trimThreshold: number): boolean;
  keepLargeBlocks(): boolean;
  trimMalloc(keepBytes: number): number;
}

/** What became of malloc's policy in this process. */
export interface MallocPolicy {
  /** Whether dosna set the thresholds itself. */
  readonly tuned: boolean;
  /** The thresholds set, or why dosna left malloc as it was. */
  readonly detail: string;
}

/** Why the process's own malloc settings stand, or undefined when dosna may set them. */
export function userMallocChoice(env: NodeJS.ProcessEnv): string | undefined {
  for (const name of ['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_MAX_']) {
    if (env[name] !== undefined) return `left to ${name}=${env[name]}`;
  }
  const tunable = /(^|:)(glibc\.malloc\.(?:mmap_threshold|trim_threshold|mmap_max))=/.exec(env.GLIBC_TUNABLES ?? '');
  if (tunable) return `left to ${tunable[2]} in GLIBC_TUNABLES`;
  return undefined;
}

/** Applies the policy with the native module's calls, unless the process chose its own. */
export function applyMallocPolicy(controls: MallocControls, env: NodeJS.ProcessEnv): MallocPolicy {
  const choice = userMallocChoice(env);
  if (choice) return { tuned: false, detail: choice };
  if (!controls.tuneMalloc(MMAP_THRESHOLD, TRIM_THRESHOLD)) return { tuned: false, detail: 'not glibc: its allocator keeps its own policy' };
  const thresholds = `mmap threshold ${MMAP_THRESHOLD / 2 ** 20} MiB, trim threshold ${TRIM_THRESHOLD / 2 ** 20} MiB`;
  if (!controls.keepLargeBlocks()) return { tuned: true, detail: thresholds };
  watchFreeHeap(controls.trimMalloc);
  return { tuned: true, detail: `${thresholds}, big arrays kept in the heap, free heap over ${FREE_HEAP_LIMIT / 2 ** 20} MiB returned after full garbage collections` };
}

/** Gives malloc's free pages back after each full garbage collection that leaves more than FREE_HEAP_LIMIT free (see above). */
function watchFreeHeap(trimMalloc: MallocControls['trimMalloc']): void {
  const observer = new PerformanceObserver((list) => {
    if (list.getEntries().some((entry) => ((entry as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) trimMalloc(FREE_HEAP_LIMIT);
  });
  observer.observe({ entryTypes: ['gc'] });
}
