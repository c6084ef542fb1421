/**
 * How a slice becomes pixels: colour maps, value limits, the colour bar and tick labels. The
 * one rendering code of `dosna view` (a PNG, in Node) and of `dosna serve`'s page (a canvas, in
 * the browser), so both show the same picture: nothing here touches Node or the DOM.
 */
import {
  interpolateCividis, interpolateInferno, interpolateMagma, interpolatePlasma, interpolateTurbo, interpolateViridis,
} from 'd3-scale-chromatic';

/** The colour maps offered: matplotlib's perceptually uniform ones, a grey ramp and turbo. */
export const COLOUR_MAPS = ['viridis', 'magma', 'inferno', 'plasma', 'cividis', 'gray', 'turbo'] as const;
export type ColourMap = (typeof COLOUR_MAPS)[number];

const INTERPOLATORS: Record<ColourMap, (t: number) => string> = {
  viridis: interpolateViridis,
  magma: interpolateMagma,
  inferno: interpolateInferno,
  plasma: interpolatePlasma,
  cividis: interpolateCividis,
  turbo: interpolateTurbo,
  gray: (t) => { const v = Math.round(t * 255); return `rgb(${v}, ${v}, ${v})`; },
};

const tables = new Map<ColourMap, Uint8Array>();

/** Whether `name` is one of `COLOUR_MAPS`. */
export function isColourMap(name: string): name is ColourMap {
  return (COLOUR_MAPS as readonly string[]).includes(name);
}

/** 256 RGB triples of a colour map, from its low end to its high end. */
export function colourTable(name: ColourMap): Uint8Array {
  let table = tables.get(name);
  if (table) return table;
  table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) table.set(parseColour(INTERPOLATORS[name](i / 255)), 3 * i);
  tables.set(name, table);
  return table;
}

/** d3's colours come as `#rrggbb` or `rgb(r, g, b)`. */
function parseColour(text: string): [number, number, number] {
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(text);
  if (hex) return [parseInt(hex[1], 16), parseInt(hex[2], 16), parseInt(hex[3], 16)];
  const rgb = /^rgb\((\d+), ?(\d+), ?(\d+)\)$/.exec(text);
  if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
  throw new Error(`unexpected colour ${text}`);
}

/** Values as numbers: 64-bit integers are shown as the nearest double. */
export type Values = ArrayLike<number> | BigInt64Array | BigUint64Array;

/** Value `i` as a number. */
const valueAt = (values: Values, i: number): number => Number(values[i]);

/**
 * The finite minimum and maximum of the values (NaN and infinities are left out, as matplotlib's
 * autoscaling does); `undefined` when no value is finite.
 */
export function valueRange(values: Values): [number, number] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = valueAt(values, i);
    if (v < lo && v > -Infinity) lo = v;
    if (v > hi && v < Infinity) hi = v;
  }
  return lo <= hi ? [lo, hi] : undefined;
}

/** The colour a value beyond the map gets: NaN shows as this grey, so gaps stand out. */
export const NAN_COLOUR = [128, 128, 128] as const;

/**
 * Paints `values` (row-major) into `rgba` (4 bytes per value, e.g. a canvas's ImageData):
 * values at or below `range[0]` get the map's first colour, at or above `range[1]` its last,
 * NaN grey. A flat range paints everything in the middle colour.
 */
export function paint(values: Values, range: readonly [number, number], map: ColourMap, rgba: Uint8Array | Uint8ClampedArray): void {
  const table = colourTable(map);
  const [lo, hi] = range;
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  for (let i = 0; i < values.length; i++) {
    const v = valueAt(values, i);
    const o = 4 * i;
    if (Number.isNaN(v)) {
      rgba[o] = NAN_COLOUR[0]; rgba[o + 1] = NAN_COLOUR[1]; rgba[o + 2] = NAN_COLOUR[2];
    } else {
      const c = 3 * (scale === 0 ? 128 : Math.max(0, Math.min(255, Math.round((v - lo) * scale))));
      rgba[o] = table[c]; rgba[o + 1] = table[c + 1]; rgba[o + 2] = table[c + 2];
    }
    rgba[o + 3] = 255;
  }
}

/** A vertical colour bar `width` x `height` as RGBA, its high end at the top. */
export function colourBar(map: ColourMap, width: number, height: number): Uint8ClampedArray<ArrayBuffer> {
  const table = colourTable(map);
  const rgba = new Uint8ClampedArray(4 * width * height);
  for (let y = 0; y < height; y++) {
    const c = 3 * Math.round(((height - 1 - y) / Math.max(1, height - 1)) * 255);
    for (let x = 0; x < width; x++) {
      const o = 4 * (y * width + x);
      rgba[o] = table[c]; rgba[o + 1] = table[c + 1]; rgba[o + 2] = table[c + 2]; rgba[o + 3] = 255;
    }
  }
  return rgba;
}

/** `count` evenly spaced values from lo to hi, for the colour bar's labels. */
export function ticks(range: readonly [number, number], count = 5): number[] {
  const [lo, hi] = range;
  if (!(hi > lo)) return [lo];
  return Array.from({ length: count }, (_, k) => lo + (k / (count - 1)) * (hi - lo));
}

/** A value as a short label: 4 significant digits, exponent form for very large or small. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '-∞';
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e5 || magnitude < 1e-3)) return value.toExponential(3).replace(/\.?0+e/, 'e');
  return String(Number(value.toPrecision(4)));
}

/** Which 2-D (or 1-D) slice of an N-D array is shown. */
export interface SliceChoice {
  /** The axis drawn downwards (rows); absent for a 1-D plot. */
  rowAxis?: number;
  /** The axis drawn across (columns), or the plotted axis of a 1-D plot. */
  colAxis: number;
  /** The index of every other axis (ignored at the displayed ones). */
  indices: readonly number[];
}

/**
 * The default slice: the middle of the first axes, the last two axes displayed (the last one
 * for 1-D data), as DosNa's web app showed the middle slice of a volume.
 */
export function defaultSlice(shape: readonly number[]): SliceChoice {
  const n = shape.length;
  const indices = shape.map((d) => Math.floor(d / 2));
  return n >= 2 ? { rowAxis: n - 2, colAxis: n - 1, indices } : { colAxis: 0, indices };
}

/**
 * The slice as an h5grove selection string (`64,:,:`): the displayed axes whole, every other
 * at its index. When the row axis comes after the column axis the values arrive transposed,
 * which `transposeIfNeeded` undoes.
 */
export function selectionString(shape: readonly number[], choice: SliceChoice): string {
  return shape.map((_, axis) => (axis === choice.rowAxis || axis === choice.colAxis ? ':' : String(choice.indices[axis]))).join(',');
}

/**
 * The selected values laid out as rows x columns: the selection keeps the dataset's axis
 * order, so a row axis after the column axis needs a transpose.
 */
export function transposeIfNeeded<T extends Values>(values: T, shape: readonly number[], choice: SliceChoice): T {
  if (choice.rowAxis === undefined || choice.rowAxis < choice.colAxis) return values;
  const rows = shape[choice.rowAxis];
  const cols = shape[choice.colAxis];
  // The selection is cols x rows (column axis first): swap.
  const out = new (values.constructor as new (n: number) => T)(values.length) as unknown as { [i: number]: number | bigint };
  const from = values as unknown as { [i: number]: number | bigint };
  for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) out[r * cols + c] = from[c * rows + r];
  return out as unknown as T;
}
