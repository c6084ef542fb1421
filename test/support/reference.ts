/**
 * An independent model of NumPy basic indexing on a flat array, written the plain way
 * (explicit index lists, one element at a time), to check the chunked implementation against.
 */
import { Slice, type IndexEntry } from '../../src/slicing.js';

export type Flat = (number | bigint)[];

/** The positions one entry selects along an axis of length n, or an integer position. */
function axisPositions(entry: IndexEntry, n: number): { positions: number[]; squeeze: boolean } {
  if (typeof entry === 'number') {
    const i = entry < 0 ? n + entry : entry;
    if (i < 0 || i >= n) throw new RangeError('out of range');
    return { positions: [i], squeeze: true };
  }
  const sl = entry as Slice;
  const step = sl.step ?? 1;
  const positions: number[] = [];
  if (step > 0) {
    let start = sl.start ?? 0;
    let stop = sl.stop ?? n;
    if (start < 0) start = Math.max(0, start + n);
    if (stop < 0) stop = Math.max(0, stop + n);
    start = Math.min(start, n);
    stop = Math.min(stop, n);
    for (let i = start; i < stop; i += step) positions.push(i);
  } else {
    let start = sl.start ?? n - 1;
    let stop = sl.stop === null ? -1 : sl.stop;
    if (sl.start !== null && start < 0) start += n;
    if (sl.stop !== null && stop < 0) stop = stop + n < 0 ? -1 : stop + n;
    if (start >= n) start = n - 1;
    for (let i = start; i > stop && i >= 0; i += step) positions.push(i);
  }
  return { positions, squeeze: false };
}

function expand(index: readonly IndexEntry[], ndim: number): IndexEntry[] {
  const out: IndexEntry[] = [];
  const explicit = index.filter((e) => e !== '...').length;
  for (const e of index) {
    if (e === '...') for (let k = 0; k < ndim - explicit; k++) out.push(new Slice());
    else out.push(e);
  }
  while (out.length < ndim) out.push(new Slice());
  return out;
}

function flatIndex(pos: readonly number[], shape: readonly number[]): number {
  let f = 0;
  for (let a = 0; a < shape.length; a++) f = f * shape[a] + pos[a];
  return f;
}

/** Every combination of per-axis positions, last axis fastest. */
function product(lists: number[][]): number[][] {
  let out: number[][] = [[]];
  for (const l of lists) out = out.flatMap((p) => l.map((v) => [...p, v]));
  return out;
}

export function refGet(flat: Flat, shape: readonly number[], index: readonly IndexEntry[]): { data: Flat; shape: number[] } {
  const axes = expand(index, shape.length).map((e, a) => axisPositions(e, shape[a]));
  const resultShape = axes.filter((a) => !a.squeeze).map((a) => a.positions.length);
  const data = product(axes.map((a) => a.positions)).map((pos) => flat[flatIndex(pos, shape)]);
  return { data, shape: resultShape };
}

/** NumPy assignment `a[index] = value` with broadcasting, on a copy of `flat`. */
export function refSet(
  flat: Flat, shape: readonly number[], index: readonly IndexEntry[], value: Flat, valueShape: readonly number[],
): Flat {
  const out = [...flat];
  const axes = expand(index, shape.length).map((e, a) => axisPositions(e, shape[a]));
  const target = axes.filter((a) => !a.squeeze).map((a) => a.positions.length);
  const lead = valueShape.length - target.length;
  const combos = product(axes.map((a) => a.positions.map((_, k) => k)));
  for (const ks of combos) {
    const resultPos = ks.filter((_, a) => !axes[a].squeeze);
    const vpos = valueShape.map((n, d) => {
      const t = d - lead;
      return t < 0 ? 0 : n === 1 ? 0 : resultPos[t];
    });
    const pos = ks.map((k, a) => axes[a].positions[k]);
    out[flatIndex(pos, shape)] = value[flatIndex(vpos, valueShape)];
  }
  return out;
}

/** A seeded PRNG (mulberry32), so a failing random case can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/** A random NumPy basic index for `shape`: integers, slices (any signs, steps), sometimes '...', sometimes fewer axes. */
export function randomIndex(r: () => number, shape: readonly number[]): IndexEntry[] {
  const entries: IndexEntry[] = [];
  const n = r() < 0.2 ? randInt(r, 0, shape.length) : shape.length;
  for (let a = 0; a < n; a++) {
    const size = shape[a];
    const kind = r();
    if (kind < 0.2) {
      entries.push(randInt(r, -size, size - 1));
    } else {
      const bound = () => (r() < 0.25 ? null : randInt(r, -size - 3, size + 3));
      const step = r() < 0.5 ? null : (r() < 0.5 ? 1 : -1) * randInt(r, 1, Math.max(1, Math.ceil(size / 2)));
      entries.push(new Slice(bound(), bound(), step));
    }
  }
  if (r() < 0.15) entries.splice(randInt(r, 0, entries.length), 0, '...');
  return entries;
}
