/**
 * `dosna view`: one slice of a dataset as a PNG, with a colour bar and its value range, drawn by
 * the same code as `dosna serve`'s page (src/view/render.ts).
 */
import { writeFileSync } from 'node:fs';
import { s, type Index } from '../slicing.js';
import { COLOUR_MAPS, formatValue, isColourMap, valueRange } from '../view/render.js';
import { linePlotPng, slicePng } from '../view/figure.js';
import { CONNECTION_HELP, UsageError, withCliConnection } from './common.js';

export const VIEW_HELP = `usage: dosna view DATASET -o FILE.png [--axis A] [--index I] [--colour-map M] [--range LO,HI]
                  --connection NAME [--backend B] [--connection-options k=v ...]

Draws one slice of DATASET: for 3 or more dimensions the slice at --index of --axis (by default
the middle of axis 0, as DosNa's web app showed), displaying the last two other axes (any
further axes at their middle); a 2-D dataset whole, or its line at --index of --axis; a 1-D
dataset as a line plot.

  -o, --output FILE     the PNG to write
  --axis A              the axis cut (default 0)
  --index I             where it is cut (default the middle; --index=-1 is the last)
  --colour-map M        ${COLOUR_MAPS.join(', ')} (default viridis)
  --range LO,HI         values at the ends of the colour map (default the slice's finite range)

${CONNECTION_HELP}`;

function integer(text: string, flag: string): number {
  if (!/^-?\d+$/.test(text)) throw new UsageError(`${flag} must be an integer, got ${JSON.stringify(text)}\n\n${VIEW_HELP}`);
  return Number(text);
}

/** The index of the slice drawn, and its title. */
export function viewIndex(name: string, shape: readonly number[], axis: number | undefined, index: number | undefined): { index: Index; title: string } {
  const ndim = shape.length;
  if (ndim === 1) {
    if (axis !== undefined || index !== undefined) throw new UsageError(`${name} is 1-D and drawn whole as a line plot: --axis and --index do not apply`);
    return { index: [], title: `${name}` };
  }
  if (ndim === 2 && axis === undefined && index === undefined) return { index: [], title: `${name}` };
  const cut = axis ?? 0;
  if (cut < 0 || cut >= ndim) throw new UsageError(`--axis must be 0 to ${ndim - 1} for ${name} of shape ${shape.join(' x ')}, got ${cut}`);
  // A negative index counts from the end (as NumPy's); out of range is get's IndexError.
  const at = index === undefined ? Math.floor(shape[cut] / 2) : index < 0 ? index + shape[cut] : index;
  // The displayed axes: the last two (one for 2-D data) other than the cut; further ones at their middle.
  const others = shape.map((_, a) => a).filter((a) => a !== cut);
  const shown = new Set(others.slice(-2));
  const entries = shape.map((extent, a) => (a === cut ? at : shown.has(a) ? s() : Math.floor(extent / 2)));
  const fixed = shape.map((_, a) => a).filter((a) => !shown.has(a));
  return { index: entries, title: `${name}, ${fixed.map((a) => `axis ${a} = ${entries[a] as number}`).join(', ')}` };
}

export async function viewCommand(argv: readonly string[]): Promise<number> {
  const flags = {
    output: { type: 'string', short: 'o' }, axis: { type: 'string' }, index: { type: 'string' },
    'colour-map': { type: 'string' }, range: { type: 'string' },
  } as const;
  return withCliConnection(argv, VIEW_HELP, flags, async (con, positionals, _json, values) => {
    if (positionals.length !== 1) throw new UsageError(`view takes one dataset\n\n${VIEW_HELP}`);
    const output = values.output as string | undefined;
    if (!output) throw new UsageError(`view needs -o FILE.png\n\n${VIEW_HELP}`);
    const colourMap = (values['colour-map'] as string | undefined) ?? 'viridis';
    if (!isColourMap(colourMap)) throw new UsageError(`--colour-map must be one of ${COLOUR_MAPS.join(', ')}, got ${JSON.stringify(colourMap)}`);
    let range: [number, number] | undefined;
    if (values.range !== undefined) {
      const parts = (values.range as string).split(',').map(Number);
      if (parts.length !== 2 || !parts.every(Number.isFinite) || !(parts[1] > parts[0])) throw new UsageError(`--range must be LO,HI with LO < HI, got ${JSON.stringify(values.range)}`);
      range = [parts[0], parts[1]];
    }
    const ds = await con.getDataset(positionals[0]);
    const axis = values.axis === undefined ? undefined : integer(values.axis as string, '--axis');
    const at = values.index === undefined ? undefined : integer(values.index as string, '--index');
    const { index, title } = viewIndex(ds.name, ds.shape, axis, at);
    const slice = await ds.get(index);
    const figure = { title, colourMap, ...(range ? { range } : {}) };
    const png = slice.shape.length === 2
      ? slicePng(slice.data, slice.shape[0], slice.shape[1], figure)
      : linePlotPng(slice.data, figure);
    writeFileSync(output, png);
    const shown = valueRange(slice.data);
    const extent = shown ? `values ${formatValue(shown[0])} to ${formatValue(shown[1])}` : 'no finite values';
    console.log(`wrote ${output}: ${title} (${slice.shape.join(' x ')} ${ds.dtype}, ${extent})`);
  });
}
