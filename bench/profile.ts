/**
 * Where a workload's time goes: one extra, untimed run of it under V8's sampling profiler
 * (the `--cpu-prof` profiler, driven through `node:inspector` so only that run is sampled),
 * its samples' self time summed by what the code is. The benchmark keeps these shares beside
 * its figures, so every ratio in docs/benchmarks.md can be read with the profile of the same
 * run. Only this thread is sampled: with worker-pool, the main thread's share of the work.
 */
import { Session } from 'node:inspector/promises';

/** What a sample's code is, by its function and script. */
export type ProfileCategory =
  | 'copy' | 'alloc' | 'kernel' | 'codec' | 'gc' | 'idle' | 'native' | 'node' | 'deps' | 'dosna';

/** Every category's share of the run's sampled time, in percent (they add up to 100). */
export type ProfileShares = Record<ProfileCategory, number>;

/** What each category means, for the report. */
export const CATEGORY_LABELS: Record<ProfileCategory, string> = {
  copy: 'copying cells: strided gather/scatter of rows, whole-chunk copies into fresh buffers',
  alloc: 'allocating fresh arrays (zero-filled by V8, their pages faulted in on first write)',
  kernel: 'the user\'s chunk function (the benchmark\'s `+1`)',
  codec: 'codecs (src/codecs)',
  gc: 'garbage collection',
  idle: 'idle: waiting for file or network I/O on other threads',
  native: 'native code outside JavaScript: system calls, memcpy, allocation, page faults',
  node: 'Node\'s own JavaScript (fs, streams, buffers)',
  deps: 'dependencies\' code (the AWS SDK, h5wasm, ndarray)',
  dosna: 'dosna\'s other JavaScript (planning, caching, commits)',
};

interface ProfileNode { id: number; callFrame: { functionName: string; url: string } }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

function categorize(node: ProfileNode, kernelScript: string): ProfileCategory {
  const { functionName: name, url } = node.callFrame;
  if (name === '(garbage collector)') return 'gc';
  if (name === '(idle)') return 'idle';
  // Once hot, V8 inlines the kernel into dosna's runKernel (which does no work of its own), and
  // code compiled before the profiler started keeps no inlining positions: its samples land there.
  if (url === kernelScript || (name === 'runKernel' && /\/chunk-ops\.[jt]s$/.test(url))) return 'kernel';
  if (/\/strided\.[jt]s$|\/segments\.[jt]s$/.test(url)) return 'copy';
  // Whole-chunk copies into fresh buffers (TypedArray.set, inlined into these functions).
  if ((name === 'chunkCopy' || name === 'chunkFill') && /\/commit\.[jt]s$/.test(url)) return 'copy';
  if (/^allocate/.test(name) && /\/dtypes\.[jt]s$/.test(url)) return 'alloc';
  if (/\/codecs\//.test(url)) return 'codec';
  if (url.startsWith('node:')) return 'node';
  if (url.includes('/node_modules/') || url.startsWith('wasm://')) return 'deps';
  if (url === '') return 'native';
  return 'dosna';
}

/** A profiled run repeats the workload until this much time is sampled (fast reads need it). */
const MIN_PROFILED_MS = 150;

/**
 * Runs `fn` under the sampling profiler (every 100 us), until MIN_PROFILED_MS have passed (or
 * `once`, for a workload that cannot simply repeat), and returns the shares of its samples' self time (the profiler's own calls left
 * out); `kernelScript` is the URL of the script whose functions count as the user's kernel.
 */
export async function profileShares(fn: () => Promise<unknown>, kernelScript: string, options: { once?: boolean } = {}): Promise<ProfileShares> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
    let profile: CpuProfile;
    try {
      const t0 = performance.now();
      do await fn(); while (!options.once && performance.now() - t0 < MIN_PROFILED_MS);
    } finally {
      ({ profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile });
    }
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const time: ProfileShares = { copy: 0, alloc: 0, kernel: 0, codec: 0, gc: 0, idle: 0, native: 0, node: 0, deps: 0, dosna: 0 };
    let total = 0;
    profile.samples.forEach((id, i) => {
      const dt = profile.timeDeltas[i] ?? 0;
      const node = byId.get(id);
      if (!node || node.callFrame.functionName === '(root)' || node.callFrame.url === 'node:inspector') return;
      // '(program)' is V8 and Node themselves outside any script: native work too.
      time[node.callFrame.functionName === '(program)' ? 'native' : categorize(node, kernelScript)] += dt;
      total += dt;
    });
    for (const key of Object.keys(time) as ProfileCategory[]) time[key] = total > 0 ? Math.round((1000 * time[key]) / total) / 10 : 0;
    return time;
  } finally {
    session.disconnect();
  }
}

/** The largest shares, as `copy 45%, idle 20%, gc 12%`. */
export function topShares(shares: ProfileShares, count = 3): string {
  return (Object.entries(shares) as [ProfileCategory, number][])
    .filter(([, v]) => v >= 1)
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([k, v]) => `${k} ${Math.round(v)}%`)
    .join(', ');
}
