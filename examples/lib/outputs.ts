/**
 * Outputs of the examples and the benchmark: slice figures with a colour bar (pngjs + resvg), line charts
 * (vega-lite rendered to SVG, then to PNG by resvg) and HDF5 result files (h5wasm).
 */
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** What a slice figure shows besides the pixels. */
export interface SliceFigure {
  /** The heading, e.g. "gaussian 3-D, N = 256, chunks 64³, slice z = 128". */
  title: string;
  /** The colour bar's label, e.g. "value". */
  label?: string;
  /** Values mapped to the ends of the colour map; the data's own range by default. */
  range?: [number, number];
  /** Smallest displayed side in pixels (the image is scaled up by a whole factor, pixels kept square). */
  minSide?: number;
}

/**
 * Writes a 2-D float array (row-major, height x width) as a figure for a report: the values in
 * the viridis colour map, scaled up to a readable size with square pixels, a title, and a
 * colour bar labelled with the value range. Drawn as SVG and rendered to PNG by resvg.
 */
export function writeSliceFigure(file: string, values: ArrayLike<number>, height: number, width: number, figure: SliceFigure): void {
  writeFileSync(file, new Resvg(sliceFigureSvg(values, height, width, figure), { background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng());
}

/** The SVG that `writeSliceFigure` renders. */
export function sliceFigureSvg(values: ArrayLike<number>, height: number, width: number, figure: SliceFigure): string {
  let [lo, hi] = figure.range ?? [Infinity, -Infinity];
  if (!figure.range) for (let i = 0; i < height * width; i++) { lo = Math.min(lo, values[i]); hi = Math.max(hi, values[i]); }
  const colours = colourTable('viridis');
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const pixels = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    const c = Math.max(0, Math.min(255, Math.round((values[i] - lo) * scale)));
    pixels.data.set(colours.subarray(3 * c, 3 * c + 3), 4 * i);
    pixels.data[4 * i + 3] = 255;
  }
  const zoom = Math.max(1, Math.ceil((figure.minSide ?? 512) / Math.max(width, height)));
  const [w, h] = [width * zoom, height * zoom];
  const [left, top, barGap, barWidth, right, bottom] = [16, 44, 16, 18, 84, 16];
  const barX = left + w + barGap;
  const stops = Array.from({ length: 11 }, (_, k) => {
    const c = Math.round((k / 10) * 255);
    return `<stop offset="${k / 10}" stop-color="rgb(${colours[3 * c]},${colours[3 * c + 1]},${colours[3 * c + 2]})"/>`;
  }).join('');
  const ticks = Array.from({ length: 5 }, (_, k) => {
    const y = top + h - (k / 4) * h;
    return `<line x1="${barX + barWidth}" x2="${barX + barWidth + 4}" y1="${y}" y2="${y}" stroke="black"/>`
      + `<text x="${barX + barWidth + 7}" y="${y + 4}" font-size="12">${formatTick(lo + (k / 4) * (hi - lo))}</text>`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${barX + barWidth + right}" height="${top + h + bottom}" font-family="DejaVu Sans">
  <text x="${left}" y="22" font-size="15" font-weight="bold">${escapeXml(figure.title)}</text>
  <text x="${barX}" y="${top - 8}" font-size="12">${escapeXml(figure.label ?? 'value')}</text>
  <image x="${left}" y="${top}" width="${w}" height="${h}" image-rendering="optimizeSpeed" href="data:image/png;base64,${PNG.sync.write(pixels).toString('base64')}"/>
  <rect x="${left}" y="${top}" width="${w}" height="${h}" fill="none" stroke="black" stroke-width="0.5"/>
  <defs><linearGradient id="bar" x1="0" y1="1" x2="0" y2="0">${stops}</linearGradient></defs>
  <rect x="${barX}" y="${top}" width="${barWidth}" height="${h}" fill="url(#bar)" stroke="black" stroke-width="0.5"/>
  ${ticks}
</svg>`;
}

/** 256 RGB triples of a vega colour scheme. */
function colourTable(name: string): Uint8Array {
  const interpolate = vega.scheme(name) as (t: number) => string;
  const table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const rgb = /rgb\((\d+), ?(\d+), ?(\d+)\)/.exec(interpolate(i / 255));
    if (!rgb) throw new Error(`colour scheme ${name} gave ${interpolate(i / 255)}`);
    table.set([Number(rgb[1]), Number(rgb[2]), Number(rgb[3])], 3 * i);
  }
  return table;
}

function formatTick(value: number): string {
  return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(2) : Number(value.toPrecision(3)).toString();
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
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
