/**
 * Figures as PNG files, in Node: a 2-D slice in a colour map with a colour bar labelled with its
 * value range, or a 1-D line plot. The pixels come from render.ts (as on `dosna serve`'s page);
 * the figure around them is SVG rendered by resvg, so labels get real fonts.
 */
import { PNG } from 'pngjs';
import { Resvg } from '@resvg/resvg-js';
import { colourTable, formatValue, paint, ticks, valueRange, type ColourMap, type Values } from './render.js';

/** What a figure shows besides the values. */
export interface Figure {
  /** The heading, e.g. "vol, axis 0 = 128". */
  title: string;
  /** The colour bar's (or the y axis's) label; "value" by default. */
  label?: string;
  /** Values mapped to the ends of the colour map (the y axis's limits); the data's own range by default. */
  range?: readonly [number, number];
  /** The colour map of a slice; viridis by default. */
  colourMap?: ColourMap;
  /** Smallest displayed side of a slice in pixels (scaled up by a whole factor, pixels kept square); 512 by default. */
  minSide?: number;
}

const FONT = { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' };

/** Renders an SVG figure to PNG bytes on white. */
export function svgToPng(svg: string): Buffer {
  return new Resvg(svg, { background: 'white', font: FONT }).render().asPng();
}

/** The value range a figure shows: the one asked for, else the finite values' own (0..1 when none is finite). */
function figureRange(values: Values, figure: Figure): [number, number] {
  if (figure.range) return [figure.range[0], figure.range[1]];
  return valueRange(values) ?? [0, 1];
}

/**
 * A 2-D slice (row-major, height x width) as SVG: the values in the colour map, scaled up to a
 * readable size with square pixels, a title, and a colour bar with five labelled ticks from the
 * low to the high end of the range.
 */
export function sliceFigureSvg(values: Values, height: number, width: number, figure: Figure): string {
  const range = figureRange(values, figure);
  const map = figure.colourMap ?? 'viridis';
  const pixels = new PNG({ width, height });
  paint(values, range, map, pixels.data);
  const zoom = Math.max(1, Math.ceil((figure.minSide ?? 512) / Math.max(width, height)));
  const [w, h] = [width * zoom, height * zoom];
  const [left, top, barGap, barWidth, right, bottom] = [16, 44, 16, 18, 84, 16];
  const barX = left + w + barGap;
  const colours = colourTable(map);
  const stops = Array.from({ length: 11 }, (_, k) => {
    const c = 3 * Math.round((k / 10) * 255);
    return `<stop offset="${k / 10}" stop-color="rgb(${colours[c]},${colours[c + 1]},${colours[c + 2]})"/>`;
  }).join('');
  const labels = ticks(range);
  const tickMarks = labels.map((value, k) => {
    const y = labels.length === 1 ? top + h / 2 : top + h - (k / (labels.length - 1)) * h;
    return `<line x1="${barX + barWidth}" x2="${barX + barWidth + 4}" y1="${y}" y2="${y}" stroke="black"/>`
      + `<text x="${barX + barWidth + 7}" y="${y + 4}" font-size="12">${escapeXml(formatValue(value))}</text>`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${barX + barWidth + right}" height="${top + h + bottom}" font-family="DejaVu Sans">
  <text x="${left}" y="22" font-size="15" font-weight="bold">${escapeXml(figure.title)}</text>
  <text x="${barX}" y="${top - 8}" font-size="12">${escapeXml(figure.label ?? 'value')}</text>
  <image x="${left}" y="${top}" width="${w}" height="${h}" image-rendering="optimizeSpeed" href="data:image/png;base64,${PNG.sync.write(pixels).toString('base64')}"/>
  <rect x="${left}" y="${top}" width="${w}" height="${h}" fill="none" stroke="black" stroke-width="0.5"/>
  <defs><linearGradient id="bar" x1="0" y1="1" x2="0" y2="0">${stops}</linearGradient></defs>
  <rect x="${barX}" y="${top}" width="${barWidth}" height="${h}" fill="url(#bar)" stroke="black" stroke-width="0.5"/>
  ${tickMarks}
</svg>`;
}

/** A 1-D array as an SVG line plot: index across, value up, the range's ends and the index range labelled. */
export function linePlotSvg(values: Values, figure: Figure): string {
  const range = figureRange(values, figure);
  const [left, top, w, h, bottom] = [72, 44, 640, 320, 40];
  const [lo, hi] = range[1] > range[0] ? range : [range[0] - 1, range[0] + 1];
  const n = values.length;
  const x = (i: number) => left + (n > 1 ? (i / (n - 1)) * w : w / 2);
  const y = (v: number) => top + h - ((Math.max(lo, Math.min(hi, v)) - lo) / (hi - lo)) * h;
  // A line broken at NaN, as matplotlib draws it.
  const segments: string[] = [];
  let current: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = Number(values[i]);
    if (Number.isNaN(v)) {
      if (current.length) segments.push(current.join(' '));
      current = [];
    } else current.push(`${x(i).toFixed(2)},${y(v).toFixed(2)}`);
  }
  if (current.length) segments.push(current.join(' '));
  const yTicks = ticks([lo, hi]).map((v) => `<line x1="${left - 4}" x2="${left}" y1="${y(v)}" y2="${y(v)}" stroke="black"/>`
    + `<text x="${left - 7}" y="${y(v) + 4}" font-size="12" text-anchor="end">${escapeXml(formatValue(v))}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${left + w + 24}" height="${top + h + bottom}" font-family="DejaVu Sans">
  <text x="${left}" y="22" font-size="15" font-weight="bold">${escapeXml(figure.title)}</text>
  <rect x="${left}" y="${top}" width="${w}" height="${h}" fill="none" stroke="black" stroke-width="0.5"/>
  ${segments.map((points) => `<polyline points="${points}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>`).join('\n  ')}
  ${yTicks}
  <text x="${left}" y="${top + h + 18}" font-size="12">0</text>
  <text x="${left + w}" y="${top + h + 18}" font-size="12" text-anchor="end">${n - 1}</text>
  <text x="${left + w / 2}" y="${top + h + 32}" font-size="12" text-anchor="middle">index</text>
  <text x="16" y="${top - 8}" font-size="12">${escapeXml(figure.label ?? 'value')}</text>
</svg>`;
}

/** A 2-D slice as PNG bytes (see `sliceFigureSvg`). */
export function slicePng(values: Values, height: number, width: number, figure: Figure): Buffer {
  return svgToPng(sliceFigureSvg(values, height, width, figure));
}

/** A 1-D array as PNG bytes (see `linePlotSvg`). */
export function linePlotPng(values: Values, figure: Figure): Buffer {
  return svgToPng(linePlotSvg(values, figure));
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
