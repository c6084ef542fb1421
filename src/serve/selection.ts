/**
 * h5grove's selection strings (`0,:,2:5`, `::2`, `-1,10:20:2`): comma-separated members, each an
 * integer (that axis is dropped) or `start:stop[:step]`; missing trailing axes are whole. As in
 * h5py, a negative index counts from the end and steps must be positive.
 */
import { s, type Index, type IndexEntry } from '../slicing.js';

/** A selection string that does not parse or does not fit the dataset. */
export class SelectionSyntaxError extends Error {
  override name = 'SelectionSyntaxError';
}

const INTEGER = /^\s*[+-]?\d+\s*$/;

function bound(text: string, what: string, selection: string): number | null {
  if (text.trim() === '') return null;
  if (!INTEGER.test(text)) throw new SelectionSyntaxError(`selection ${JSON.stringify(selection)}: ${what} ${JSON.stringify(text)} is not an integer`);
  return Number(text);
}

/** Parses `selection` for a dataset of `ndim` axes into a dosna index (undefined or empty: everything). */
export function parseSelection(selection: string | undefined, ndim: number): Index {
  if (selection === undefined || selection.trim() === '') return [];
  const members = selection.split(',');
  if (members.length > ndim) {
    throw new SelectionSyntaxError(`selection ${JSON.stringify(selection)} has ${members.length} members for a dataset of ${ndim} dimensions`);
  }
  return members.map((member): IndexEntry => {
    const parts = member.split(':');
    if (parts.length === 1) {
      const index = bound(member, 'index', selection);
      if (index === null) throw new SelectionSyntaxError(`selection ${JSON.stringify(selection)} has an empty member`);
      return index;
    }
    if (parts.length > 3) throw new SelectionSyntaxError(`selection ${JSON.stringify(selection)}: ${JSON.stringify(member)} is not start:stop:step`);
    const [start, stop, step] = [bound(parts[0], 'start', selection), bound(parts[1], 'stop', selection), parts.length === 3 ? bound(parts[2], 'step', selection) : null];
    if (step !== null && step <= 0) throw new SelectionSyntaxError(`selection ${JSON.stringify(selection)}: the step must be positive, got ${step}`);
    return s(start, stop, step);
  });
}
