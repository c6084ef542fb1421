import { InvalidNameError } from './errors.js';

/**
 * Checks a dataset or connection name against the rules every backend shares: not empty,
 * not `.`/`..`, no path separators, no control characters (NUL included), valid Unicode (no
 * lone surrogate: names become file names and UTF-8 object keys), at most 255 bytes in UTF-8
 * (a file name's limit). Backends may add their own (S3 bucket rules, for instance).
 */
export function checkName(name: unknown, what = 'dataset'): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidNameError(`${what} name must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  if (name === '.' || name === '..') throw new InvalidNameError(`${what} name ${JSON.stringify(name)} would escape its folder`);
  if (/[/\\]/.test(name)) throw new InvalidNameError(`${what} name ${JSON.stringify(name)} contains a path separator`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new InvalidNameError(`${what} name ${JSON.stringify(name)} contains a control character`);
  if (!name.isWellFormed()) throw new InvalidNameError(`${what} name ${JSON.stringify(name)} is not valid Unicode (it has a lone surrogate)`);
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > 255) throw new InvalidNameError(`${what} name is ${bytes} bytes long in UTF-8, more than the 255 a file name may have`);
  return name;
}
