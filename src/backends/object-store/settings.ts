/**
 * Settings of the `s3` and `ceph` backends: the tuning options both take (validated, with
 * their defaults), and the names S3 accepts for buckets and keys.
 */
import { InvalidNameError, OptionError } from '../../errors.js';
import { checkName } from '../../names.js';
import { checkPath } from '../../paths.js';

/**
 * Defaults of the tuning options both backends take. `requestTimeout` bounds the silence of a
 * request (no byte moving), not its length, so a big chunk on a slow link still gets through;
 * with `maxAttempts` it bounds how long a server that accepts connections and never answers
 * keeps a caller waiting: about 3 x 5 s, then a `ConnectionError`. A busy real cluster that
 * needs more can be given it (`requestTimeout: 30000`).
 */
export const DEFAULTS = {
  maxConcurrency: 32,
  maxAttempts: 3,
  connectionTimeout: 3000,
  requestTimeout: 5000,
} as const;

/** Tuning options common to `s3` and `ceph` (all plain data). */
export const TUNING_OPTIONS = ['create', 'maxConcurrency', 'maxAttempts', 'connectionTimeout', 'requestTimeout'] as const;

/** Resolved client settings: everything needed to build an S3 client. */
export interface ClientSettings {
  readonly backend: string;
  readonly bucket: string;
  readonly endpoint?: string;
  readonly region?: string;
  readonly profile?: string;
  readonly forcePathStyle?: boolean;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  readonly create: boolean;
  readonly maxConcurrency: number;
  readonly maxAttempts: number;
  readonly connectionTimeout: number;
  readonly requestTimeout: number;
  readonly checksums: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
}

export function optString(backend: string, options: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const v = options[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new OptionError(`${backend} option ${key} must be a non-empty string`);
  return v;
}

export function optBoolean(backend: string, options: Readonly<Record<string, unknown>>, key: string): boolean | undefined {
  const v = options[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new OptionError(`${backend} option ${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function optInteger(backend: string, options: Readonly<Record<string, unknown>>, key: string, min: number): number | undefined {
  const v = options[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new OptionError(`${backend} option ${key} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function checkEndpoint(backend: string, endpoint: string | undefined): string | undefined {
  if (endpoint === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new OptionError(`${backend} option endpoint must be a URL such as http://127.0.0.1:7480, got ${JSON.stringify(endpoint)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OptionError(`${backend} endpoint must be http:// or https://, got ${JSON.stringify(url.protocol)}`);
  }
  if (url.username || url.password) throw new OptionError(`${backend} endpoint must not carry credentials; use the credential options`);
  return endpoint;
}

/** Tuning options, validated, with their defaults. */
export function tuning(backend: string, options: Readonly<Record<string, unknown>>) {
  return {
    create: optBoolean(backend, options, 'create') ?? false,
    maxConcurrency: optInteger(backend, options, 'maxConcurrency', 1) ?? DEFAULTS.maxConcurrency,
    maxAttempts: optInteger(backend, options, 'maxAttempts', 1) ?? DEFAULTS.maxAttempts,
    connectionTimeout: optInteger(backend, options, 'connectionTimeout', 1) ?? DEFAULTS.connectionTimeout,
    requestTimeout: optInteger(backend, options, 'requestTimeout', 1) ?? DEFAULTS.requestTimeout,
  };
}

/**
 * S3 bucket naming rules (general purpose buckets): 3-63 characters of lowercase letters,
 * digits, dots and hyphens, starting and ending with a letter or digit, no `..`, not an IP
 * address, none of the reserved prefixes and suffixes.
 */
export function checkBucketName(name: unknown, backend: string): string {
  const what = `${backend} connection (bucket)`;
  checkName(name, what);
  const bucket = name as string;
  const why =
    bucket.length < 3 || bucket.length > 63 ? 'must be 3 to 63 characters long'
    : !/^[a-z0-9.-]+$/.test(bucket) ? 'may hold only lowercase letters, digits, dots and hyphens'
    : !/^[a-z0-9].*[a-z0-9]$/.test(bucket) ? 'must start and end with a lowercase letter or a digit'
    : bucket.includes('..') || bucket.includes('.-') || bucket.includes('-.') ? 'must not have two adjacent dots, or a dot next to a hyphen'
    : /^\d+\.\d+\.\d+\.\d+$/.test(bucket) ? 'must not look like an IP address'
    : /^(xn--|sthree-|amzn-s3-demo-)/.test(bucket) || /(-s3alias|--ol-s3|--x-s3|--table-s3)$/.test(bucket) ? 'uses a prefix or suffix S3 reserves'
    : undefined;
  if (why) throw new InvalidNameError(`${what} name ${JSON.stringify(bucket)} is not a valid bucket name: it ${why}`);
  return bucket;
}

/**
 * A dataset path as it goes into object keys (`scan1/vol`: the core rules per segment include
 * valid Unicode, keys being UTF-8); S3 keys may have up to 1024 bytes.
 */
export function checkDatasetName(name: unknown): string {
  const checked = checkPath(name);
  if (Buffer.byteLength(checked, 'utf8') > 900) throw new InvalidNameError(`dataset path ${JSON.stringify(checked.slice(0, 40))}... is too long for S3 object keys (at most 900 bytes in UTF-8, leaving room for chunk names)`);
  return checked;
}
