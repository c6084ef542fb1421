/**
 * NumPy basic indexing: turning user index entries into a per-axis selection, and cutting a
 * selection into the parts that fall in each chunk. Everything here is plain arithmetic on
 * small arrays, shared by every engine (and serializable, so workers can run it too).
 */
import { IndexError } from './errors.js';

/** A slice `start:stop:step`; any part may be `null` (NumPy's default for that part). */
export class Slice {
  constructor(
    readonly start: number | null = null,
    readonly stop: number | null = null,
    readonly step: number | null = null,
  ) {}

  toString(): string {
    const part = (v: number | null) => (v === null ? '' : String(v));
    return `${part(this.start)}:${part(this.stop)}${this.step === null ? '' : `:${this.step}`}`;
  }
}

/**
 * Makes a slice: `s(36, 80)` is NumPy's `36:80`, `s(89, null)` is `89:`, `s(null, 56)` is
 * `:56`, `s(null, null, -1)` is `::-1`, and `s()` is `:`.
 * Note: unlike Python's `slice(5)`, `s(5)` means `5:` (the first argument is always the start).
 */
export function s(start: number | bigint | null = null, stop: number | bigint | null = null, step: number | bigint | null = null): Slice {
  const slice = new Slice(sliceBound(start, 'start'), sliceBound(stop, 'stop'), sliceBound(step, 'step'));
  if (slice.step === 0) throw new IndexError('slice step cannot be zero');
  return slice;
}

/**
 * An integer position as a number: a safe integer, or a bigint that is one (NumPy takes any
 * integer type as an index). Anything else is `undefined`.
 */
function integer(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
  return undefined;
}

/** What a value is, in a few words, for messages (never the whole of an array). */
function briefly(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return `${typeof value} ${String(value)}${typeof value === 'bigint' ? 'n' : ''}`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  const name = (value as object).constructor?.name ?? 'object';
  const shape = (value as { shape?: unknown }).shape;
  return Array.isArray(shape) ? `a ${name} of shape [${shape.join(', ')}]` : `a ${name}`;
}

function sliceBound(value: unknown, name: string): number | null {
  if (value === null || value === undefined) return null;
  const n = integer(value);
  if (n === undefined) throw new IndexError(`slice ${name} must be an integer or null, got ${briefly(value)}`);
  return n;
}

/** The ellipsis entry: stands for as many full slices as needed. */
export const ELLIPSIS = '...';

/** One entry of an index: an integer (a number, or a bigint), a slice, or `'...'`. */
export type IndexEntry = number | bigint | Slice | typeof ELLIPSIS;
/** An index: one entry, or one per axis (missing trailing axes are full). */
export type Index = IndexEntry | readonly IndexEntry[];

/**
 * The selection along one axis: `count` positions `start + k * step` for k in [0, count).
 * `squeeze` marks an axis indexed by an integer (it disappears from the result's shape).
 */
export interface AxisSelection {
  readonly start: number;
  readonly step: number;
  readonly count: number;
  readonly squeeze: boolean;
}

/** One {@link AxisSelection} per dataset axis. Plain data: safe to send to workers. */
export type Selection = readonly AxisSelection[];

/** Normalizes a user index against a shape, with NumPy's basic-indexing rules. */
export function normalizeIndex(index: Index | undefined, shape: readonly number[]): Selection {
  const entries: readonly IndexEntry[] =
    index === undefined ? [] : Array.isArray(index) ? index : [index as IndexEntry];
  const ellipses = entries.filter((e) => e === ELLIPSIS).length;
  if (ellipses > 1) throw new IndexError("an index can only have a single ellipsis ('...')");
  const explicit = entries.length - ellipses;
  if (explicit > shape.length) {
    throw new IndexError(`too many indices: ${explicit} given for ${shape.length}-dimensional data`);
  }
  const expanded: IndexEntry[] = [];
  for (const e of entries) {
    if (e === ELLIPSIS) for (let i = 0; i < shape.length - explicit; i++) expanded.push(new Slice());
    else expanded.push(e);
  }
  while (expanded.length < shape.length) expanded.push(new Slice());
  return expanded.map((entry, axis) => normalizeEntry(entry, shape[axis], axis));
}

function normalizeEntry(entry: IndexEntry, n: number, axis: number): AxisSelection {
  if (typeof entry === 'number' || typeof entry === 'bigint') {
    const index = integer(entry);
    if (index === undefined) throw new IndexError(`index ${briefly(entry)} on axis ${axis} is not an integer`);
    const i = index < 0 ? index + n : index;
    if (i < 0 || i >= n) {
      throw new IndexError(`index ${index} is out of bounds for axis ${axis} with size ${n}`);
    }
    return { start: i, step: 1, count: 1, squeeze: true };
  }
  if (entry instanceof Slice) {
    // A Slice may be built directly (new Slice(0.5, 3)): its parts are checked here, whatever way it was made.
    const checked = new Slice(sliceBound(entry.start, 'start'), sliceBound(entry.stop, 'stop'), sliceBound(entry.step, 'step'));
    return { ...sliceIndices(checked, n), squeeze: false };
  }
  throw new IndexError(
    `invalid index entry ${briefly(entry)} on axis ${axis}: use an integer, s(start, stop, step) or '...' (boolean masks and integer arrays are not supported)`,
  );
}

/** Python's `slice.indices(n)` followed by the length computation: start, step and count. */
export function sliceIndices(slice: Slice, n: number): { start: number; step: number; count: number } {
  const step = slice.step ?? 1;
  if (step === 0) throw new IndexError('slice step cannot be zero');
  let start: number;
  let stop: number;
  if (step > 0) {
    start = clampBound(slice.start, n, 0, 0, n);
    stop = clampBound(slice.stop, n, n, 0, n);
  } else {
    start = clampBound(slice.start, n, n - 1, -1, n - 1);
    stop = clampBound(slice.stop, n, -1, -1, n - 1);
  }
  const count = step > 0
    ? Math.max(0, Math.ceil((stop - start) / step))
    : Math.max(0, Math.ceil((start - stop) / -step));
  return { start, step, count };
}

function clampBound(value: number | null, n: number, fallback: number, lower: number, upper: number): number {
  if (value === null) return fallback;
  const v = value < 0 ? value + n : value;
  return Math.min(Math.max(v, lower), upper);
}

/** The shape of a selection with integer-indexed axes kept (as length 1). */
export function selectionShape(sel: Selection): number[] {
  return sel.map((a) => a.count);
}

/** The shape of a selection as NumPy returns it: integer-indexed axes removed. */
export function squeezedShape(sel: Selection): number[] {
  return sel.filter((a) => !a.squeeze).map((a) => a.count);
}

/** The part of one axis's selection that falls in one chunk of that axis. */
export interface AxisPart {
  /** Chunk index along the axis. */
  readonly chunk: number;
  /** First selected position, relative to the chunk's origin. */
  readonly localStart: number;
  readonly step: number;
  readonly count: number;
  /** Position of the first of these elements in the (unsqueezed) result. */
  readonly outStart: number;
}

/** The part of one axis's selection inside chunk `c` (of size `chunk`), or null when empty. */
export function axisPart(a: AxisSelection, chunk: number, c: number): AxisPart | null {
  if (a.count === 0) return null;
  const lo = c * chunk;
  const hi = lo + chunk - 1;
  let kLo: number;
  let kHi: number;
  if (a.step > 0) {
    kLo = Math.max(0, Math.ceil((lo - a.start) / a.step));
    kHi = Math.min(a.count - 1, Math.floor((hi - a.start) / a.step));
  } else {
    const back = -a.step;
    kLo = Math.max(0, Math.ceil((a.start - hi) / back));
    kHi = Math.min(a.count - 1, Math.floor((a.start - lo) / back));
  }
  if (kHi < kLo) return null;
  return { chunk: c, localStart: a.start + kLo * a.step - lo, step: a.step, count: kHi - kLo + 1, outStart: kLo };
}

/** Every chunk along one axis that holds at least one selected position, in ascending order. */
export function axisParts(a: AxisSelection, chunk: number): AxisPart[] {
  if (a.count === 0) return [];
  const first = a.start;
  const last = a.start + (a.count - 1) * a.step;
  const cLo = Math.floor(Math.min(first, last) / chunk);
  const cHi = Math.floor(Math.max(first, last) / chunk);
  const parts: AxisPart[] = [];
  for (let c = cLo; c <= cHi; c++) {
    const p = axisPart(a, chunk, c);
    if (p) parts.push(p);
  }
  return parts;
}

/** Grid indices of every chunk a selection touches, in C order. */
export function touchedChunks(sel: Selection, chunkSize: readonly number[]): number[][] {
  const perAxis = sel.map((a, axis) => axisParts(a, chunkSize[axis]).map((p) => p.chunk));
  return cartesian(perAxis);
}

/** The cartesian product of per-axis lists, in C order (last axis fastest). */
export function cartesian(lists: readonly (readonly number[])[]): number[][] {
  let out: number[][] = [[]];
  for (const list of lists) {
    const next: number[][] = [];
    for (const prefix of out) for (const v of list) next.push([...prefix, v]);
    out = next;
  }
  return out;
}

/** Every grid index of a chunk grid, in C order. */
export function allChunks(grid: readonly number[]): number[][] {
  return cartesian(grid.map((n) => Array.from({ length: n }, (_, i) => i)));
}

/** Per-axis parts of a selection inside one chunk, or null when the chunk holds none of it. */
export function chunkPart(sel: Selection, chunkSize: readonly number[], chunk: readonly number[]): AxisPart[] | null {
  const parts: AxisPart[] = [];
  for (let axis = 0; axis < sel.length; axis++) {
    const p = axisPart(sel[axis], chunkSize[axis], chunk[axis]);
    if (!p) return null;
    parts.push(p);
  }
  return parts;
}

/** A slice that selects `count` positions from `start` by `step` (a `null` stop when it runs past 0). */
export function partToSlice(start: number, step: number, count: number): Slice {
  const stop = start + count * step;
  return new Slice(start, stop < 0 ? null : stop, step);
}

/** Row-major (C-order) element strides of a shape. */
export function cStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = acc;
    acc *= shape[i];
  }
  return strides;
}

export function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: readonly number[]): string {
  return `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
}
