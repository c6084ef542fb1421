/**
 * glibc malloc's thresholds for a process that holds dosna's chunks.
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
 * 64-bit (32 MiB: chunks come from the heap; larger arrays are still mapped alone and given
 * back when freed) and the trim threshold at 256 MiB (the most free memory the heap keeps
 * for reuse instead of returning it). That is the steady state glibc's adaptive policy drifts
 * towards for large blocks anyway, fixed from the start. A choice the process was started
 * with stands: `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, or either threshold in
 * `GLIBC_TUNABLES`; `DOSNA_NATIVE=0` leaves malloc alone too.
 */

/** The mmap threshold dosna asks for: glibc's largest on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX). */
export const MMAP_THRESHOLD = 32 * 2 ** 20;
/** The trim threshold dosna asks for: how much free heap may stay mapped for reuse. */
export const TRIM_THRESHOLD = 256 * 2 ** 20;

/** What became of malloc's thresholds in this process. */
export interface MallocPolicy {
  /** Whether dosna set the thresholds itself. */
  readonly tuned: boolean;
  /** The thresholds set, or why dosna left malloc as it was. */
  readonly detail: string;
}

/** Why the process's own malloc settings stand, or undefined when dosna may set them. */
export function userMallocChoice(env: NodeJS.ProcessEnv): string | undefined {
  for (const name of ['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_']) {
    if (env[name] !== undefined) return `left to ${name}=${env[name]}`;
  }
  const tunable = /(^|:)(glibc\.malloc\.(?:mmap|trim)_threshold)=/.exec(env.GLIBC_TUNABLES ?? '');
  if (tunable) return `left to ${tunable[2]} in GLIBC_TUNABLES`;
  return undefined;
}

/** Applies the policy with the native module's `tuneMalloc`, unless the process chose its own. */
export function applyMallocPolicy(tuneMalloc: (mmapThreshold: number, trimThreshold: number) => boolean, env: NodeJS.ProcessEnv): MallocPolicy {
  const choice = userMallocChoice(env);
  if (choice) return { tuned: false, detail: choice };
  if (!tuneMalloc(MMAP_THRESHOLD, TRIM_THRESHOLD)) return { tuned: false, detail: 'not glibc: its allocator keeps its own policy' };
  return { tuned: true, detail: `mmap threshold ${MMAP_THRESHOLD / 2 ** 20} MiB, trim threshold ${TRIM_THRESHOLD / 2 ** 20} MiB` };
}
