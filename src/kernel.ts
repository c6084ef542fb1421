/**
 * Functions that `map` and `apply` run on every chunk, and module references to them.
 * A plain function runs wherever the engine runs it; engines that run it elsewhere (worker
 * threads, other processes) ship self-contained functions by source and module kernels
 * (`kernel(url, name)`) by reference.
 */
import type { NdArray } from './ndarray.js';
import type { TypedArray } from './dtypes.js';
import { DosnaError } from './errors.js';
import type { ArrayValue } from './values.js';

/** What a chunk function learns about the chunk it is given. */
export interface ChunkContext<Args = unknown> {
  /** Grid index of the chunk. */
  readonly index: readonly number[];
  /** Dataset coordinates of the chunk's first cell. */
  readonly origin: readonly number[];
  /** Shape of the chunk's own cells (edge chunks are smaller than `chunkSize`). */
  readonly shape: readonly number[];
  /** Cells of padding on each side of each axis (0 without a halo). */
  readonly halo: readonly number[];
  /** The `args` given in the options, as given (structured-cloned in other threads). */
  readonly args: Args;
  /** The input dataset's shape, dtype and chunk size. */
  readonly dataset: { readonly name: string; readonly shape: readonly number[]; readonly dtype: string; readonly chunkSize: readonly number[] };
}

/**
 * A function applied to one chunk. It may return a new array (of the chunk's shape, or of the
 * padded shape when a halo was asked for), or change `chunk` in place and return nothing.
 */
export type ChunkFunction<Args = unknown> = (
  chunk: NdArray<TypedArray>,
  ctx: ChunkContext<Args>,
) => ArrayValue | void | Promise<ArrayValue | void>;

/** A reference to a chunk function exported by a module, for engines that import it elsewhere. */
export interface KernelRef {
  readonly kind: 'dosna.kernel';
  /** Absolute URL of the module (`file:` URLs for local files). */
  readonly module: string;
  /** Name of the export that is the function. */
  readonly exportName: string;
}

/** A chunk function, given directly or by module reference. */
export type Kernel<Args = unknown> = ChunkFunction<Args> | KernelRef;

/**
 * Names a chunk function exported by a module, so every engine can import it where it runs:
 * `dn.kernel(new URL('./kernels.js', import.meta.url), 'gaussian')`.
 */
export function kernel(module: URL | string, exportName = 'default'): KernelRef {
  const href = module instanceof URL ? module.href : new URL(module, `file://${process.cwd()}/`).href;
  return { kind: 'dosna.kernel', module: href, exportName };
}

export function isKernelRef(value: unknown): value is KernelRef {
  return typeof value === 'object' && value !== null && (value as KernelRef).kind === 'dosna.kernel';
}

const moduleCache = new Map<string, Promise<Record<string, unknown>>>();

/** Imports a kernel's module (once per process or thread) and returns the function. */
export async function resolveKernel(k: Kernel): Promise<ChunkFunction> {
  if (typeof k === 'function') return k;
  if (!isKernelRef(k)) throw new DosnaError('a map/apply function must be a function or dn.kernel(url, exportName)');
  let mod = moduleCache.get(k.module);
  if (!mod) {
    mod = import(k.module) as Promise<Record<string, unknown>>;
    moduleCache.set(k.module, mod);
  }
  const fn = (await mod)[k.exportName];
  if (typeof fn !== 'function') {
    throw new DosnaError(`module ${k.module} has no function export named ${JSON.stringify(k.exportName)}`);
  }
  return fn as ChunkFunction;
}
