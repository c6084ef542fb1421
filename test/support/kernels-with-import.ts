/** A module kernel that needs imports: shipped to workers by reference (dn.kernel). */
import { ndarray, type ChunkContext, type NdArray } from '../../src/index.js';
import { clamp } from './math-helpers.js';

export function clampKernel(chunk: NdArray, ctx: ChunkContext<{ lo: number; hi: number }>): NdArray {
  const out = Float32Array.from(chunk.data as Float32Array, (v) => clamp(v, ctx.args.lo, ctx.args.hi));
  return ndarray(out, chunk.shape);
}

/** Throws from a module, so the test can find this file in the remote stack. */
export function failingKernel(): never {
  throw new RangeError('module kernel failed on purpose');
}
