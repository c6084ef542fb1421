/**
 * Outputs of the examples and the benchmark: grayscale PNG slices (pngjs), line charts
 * (vega-lite rendered to SVG, then to PNG by resvg) and HDF5 result files (h5wasm).
 */
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** Writes a 2-D float array as an 8-bit grayscale PNG, scaled so [lo, hi] spans black to white. */
export function writeSlicePng(file: string, values: ArrayLike<number>, height: number, width: number, range?: [number, number]): void {
  let [lo, hi] = range ?? [Infinity, -Infinity];
  if (!range) for (let i = 0; i < values.length; i++) { lo = Math.min(lo, values[i]); hi = Math.max(hi, values[i]); }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    const v = Math.max(0, Math.min(255, Math.round((values[i] - lo) * scale)));
    png.data[4 * i] = v;
    png.data[4 * i + 1] = v;
    png.data[4 * i + 2] = v;
    png.data[4 * i + 3] = 255;
  }
  writeFileSync(file, PNG.sync.write(png));
}

/** Renders a vega-lite spec to a PNG file (system fonts, white background). */
export async function writeChartPng(file: string, spec: TopLevelSpec): Promise<void> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
  writeFileSync(file, png);
}

/** One HDF5 file with named arrays and attributes; values are float64 unless typed. */
export async function writeHdf5(file: string, arrays: Record<string, { data: Float64Array | Int32Array; shape: number[]; attrs?: Record<string, string | number | string[] | number[]> }>, attrs: Record<string, string | number | string[] | number[]> = {}): Promise<void> {
  const h5wasm = await import('h5wasm/node');
  await h5wasm.ready;
  const f = new h5wasm.File(file, 'w');
  try {
    const put = (target: { create_attribute: (name: string, value: never) => void }, entries: Record<string, unknown>) => {
      for (const [k, v] of Object.entries(entries)) target.create_attribute(k, v as never);
    };
    put(f as never, attrs);
    for (const [name, a] of Object.entries(arrays)) {
      const ds = f.create_dataset({ name, data: a.data, shape: a.shape });
      if (a.attrs) put(ds as never, a.attrs);
    }
  } finally {
    f.close();
  }
}
