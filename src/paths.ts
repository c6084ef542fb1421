/**
 * Paths of datasets and groups: `'vol'` is a dataset at the top of the connection, as in
 * Python DosNa; `'scan1/vol'` is dataset `vol` in group `scan1`, as h5py and zarr name them.
 * A path is checked segment by segment: each follows the rules of `checkName` (so no segment
 * can escape its parent), and none may start with `.dosna`, which names dosna's own files
 * (group markers, attribute objects).
 */
import { InvalidNameError } from './errors.js';
import { checkName } from './names.js';

/** Names starting with this are dosna's own files and objects, never datasets or groups. */
export const RESERVED_PREFIX = '.dosna';

/** The path of the connection's root group. */
export const ROOT = '';

/**
 * Checks a dataset or group path (`'vol'`, `'scan1/vol'`) and returns it normalized (no
 * leading or trailing `/`). `allowRoot` accepts `''` and `'/'`, the root group.
 */
export function checkPath(path: unknown, what = 'dataset', allowRoot = false): string {
  if (typeof path !== 'string') throw new InvalidNameError(`${what} path must be a string, got ${JSON.stringify(path)}`);
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') {
    if (allowRoot) return ROOT;
    throw new InvalidNameError(`${what} name must be a non-empty string, got ${JSON.stringify(path)}`);
  }
  const segments = trimmed.split('/');
  for (const segment of segments) {
    if (segment === '') throw new InvalidNameError(`${what} path ${JSON.stringify(path)} has an empty segment (//)`);
    checkName(segment, what);
    if (segment.startsWith(RESERVED_PREFIX)) {
      throw new InvalidNameError(`${what} path ${JSON.stringify(path)}: names starting with ${RESERVED_PREFIX} are reserved for dosna's own files`);
    }
  }
  return segments.join('/');
}

/** The segments of a checked path (`[]` for the root). */
export function segmentsOf(path: string): string[] {
  return path === ROOT ? [] : path.split('/');
}

/** The parent group's path (`''` for a top-level name). */
export function parentOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at < 0 ? ROOT : path.slice(0, at);
}

/** The last segment. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** `parent` and `name` joined (`name` may itself be a path). */
export function joinPath(parent: string, name: string): string {
  return parent === ROOT ? name : `${parent}/${name}`;
}

/** Every ancestor group of a path, outermost first (`'a/b/c'` gives `['a', 'a/b']`). */
export function ancestorsOf(path: string): string[] {
  const segments = segmentsOf(path);
  return segments.slice(0, -1).map((_, i) => segments.slice(0, i + 1).join('/'));
}

/** Whether `nodePath` is a path dosna could have made (what `checkPath` accepts). */
export function isValidPath(nodePath: string): boolean {
  try {
    checkPath(nodePath);
    return true;
  } catch {
    return false;
  }
}

/**
 * A file path per dataset or group path, made once by `make` (which checks the name) and kept,
 * up to `kept` of them (then it starts again): the folder stores stat a dataset's metadata file
 * at every operation, and checking and joining the name's segments cost more than the stat.
 */
export class PathsByName {
  readonly #paths = new Map<string, string>();

  constructor(private readonly make: (name: string) => string, private readonly kept = 1024) {}

  get(name: string): string {
    let file = this.#paths.get(name);
    if (file === undefined) {
      file = this.make(name);
      if (this.#paths.size >= this.kept) this.#paths.clear();
      this.#paths.set(name, file);
    }
    return file;
  }
}
