/**
 * Options objects: every one a function takes is checked the same way, so a misspelled or
 * unsupported option is an error naming the ones accepted, never silently ignored.
 */
import { OptionError } from './errors.js';

/** Checks that `options` (given to `what`) is undefined or a plain object; returns it (`{}` for undefined). */
export function checkObject<T extends object>(what: string, options: T | undefined): T {
  if (options === undefined) return {} as T;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new OptionError(`${what}: options must be an object, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  return options;
}

/**
 * Checks that `options` (of the call `what`) is undefined or a plain object whose keys are all
 * in `allowed`; returns it (an empty object for undefined).
 */
export function checkOptions<T extends object>(what: string, options: T | undefined, allowed: readonly string[]): T {
  const checked = checkObject(what, options);
  const unknown = Object.keys(checked).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new OptionError(`${what}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; it takes ${allowed.length ? allowed.join(', ') : 'none'}`);
  }
  return checked;
}
