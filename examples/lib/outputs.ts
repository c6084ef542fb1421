/**
 * Outputs of the examples and the benchmark: slice figures with a colour bar (the library's, as
 * `dosna view` draws them), line charts (vega-lite rendered to SVG, then to PNG by resvg) and HDF5 result files (h5wasm).
 */
import { writeFileSync } from 'node:fs';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { sliceFigureSvg, slicePng, svgToPng, type Figure } from '../../src/view/figure.js';

/** What a slice figure shows besides the pixels (the library's `Figure`: title, label, range, colour map). */
export type SliceFigure = Figure;

/**
 * Writes a 2-D float array (row-major, height x width) as a figure for a report: the values in
 * the viridis colour map, scaled up to a readable size with square pixels, a title, and a colour
 * bar labelled with the value range. The rendering is `dosna view`'s (src/view/figure.ts).
 */
export function writeSliceFigure(file: string, values: ArrayLike<number>, height: number, width: number, figure: SliceFigure): void {
  writeFileSync(file, slicePng(values, height, width, figure));
}

export { sliceFigureSvg };

/** Renders a vega-lite spec to a PNG file (system fonts, white background). */
export async function writeChartPng(file: string, spec: TopLevelSpec): Promise<void> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  writeFileSync(file, svgToPng(svg));
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
