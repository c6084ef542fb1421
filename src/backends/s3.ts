/**
 * The `s3` backend: datasets in an S3 bucket, by AWS conventions (any S3-compatible service
 * through `endpoint` + `forcePathStyle`).
 *
 * ```text
 * s3://<connection>/                     the connection: a bucket
 *   <dataset>/.dosna.json                metadata: shape, dtype (NumPy string), fillvalue,
 *                                        chunk_size, chunk_grid
 *   <dataset>/<i>.<j>.<k>                one chunk: raw little-endian C-order bytes of the full chunk
 * ```
 *
 * Options (all plain data, so workers and other processes re-open the store from them):
 * `endpoint`, `region`, `profile`, `forcePathStyle`, `credentials` ({ accessKeyId,
 * secretAccessKey, sessionToken? }), `create`, `maxConcurrency` (32), `maxAttempts` (3),
 * `connectionTimeout` (3000 ms), `requestTimeout` (5000 ms of silence), `checksums` ('WHEN_REQUIRED').
 * What is not given comes from the SDK's default chain: AWS_* environment variables and the
 * shared config and credentials files (the client's own `profile` option selects a profile).
 */
import { bytesPerElement, castScalar, fromNumpyTypeString, isBigIntDType, toNumpyTypeString, type DType, type Scalar } from '../dtypes.js';
import { fromNumcodecs, toNumcodecs, type NumcodecsConfig } from '../codecs/index.js';
import { CorruptChunkError, DosnaError, OptionError } from '../errors.js';
import { checkOptions } from '../options.js';
import type { Backend, DatasetMeta } from '../store.js';
import { checkBucketName, checkEndpoint, optBoolean, optString, tuning, TUNING_OPTIONS, type ClientSettings } from './object-store/settings.js';
import type { S3Access } from './object-store/access.js';
import { chunkGrid, ObjectStore, type MetaLayout } from './object-store/store.js';

export { S3RequestError } from './object-store/access.js';

/** Name of the metadata object inside a dataset's prefix. */
export const METADATA_OBJECT = '.dosna.json';

/** A metadata object that exists but does not hold what dosna writes there. */

/** The options of the s3 backend (and of other backends on S3). */
export const S3_OPTIONS: readonly string[] = ['endpoint', 'region', 'profile', 'forcePathStyle', 'credentials', 'checksums', ...TUNING_OPTIONS];

/** JSON has no NaN, Infinity, -0 or 64-bit integers: those are written as strings Python's float()/int() read. */
export function fillToJson(dtype: DType, value: Scalar): number | string {
  if (typeof value === 'bigint') return value.toString();
  if (isBigIntDType(dtype)) return BigInt(value).toString();
  if (Number.isNaN(value)) return 'nan';
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  if (Object.is(value, -0)) return '-0.0';
  return value;
}

/** Parses a fill value written by {@link fillToJson} (or by Python: `repr` of a float or int). */
export function fillFromText(dtype: DType, raw: unknown): Scalar {
  let value: unknown = raw;
  if (typeof raw === 'string') {
    let text = raw.trim();
    const wrapped = /^(?:np|numpy)\.\w+\((.*)\)$/.exec(text);
    if (wrapped) text = wrapped[1].trim();
    if (isBigIntDType(dtype)) {
      const m = /^([+-]?\d+)(?:\.0*)?$/.exec(text);
      if (!m) throw new DosnaError(`fill value ${JSON.stringify(raw)} is not an integer`);
      value = BigInt(m[1]);
    } else {
      const lower = text.toLowerCase();
      if (lower === 'nan' || lower === '+nan' || lower === '-nan') value = NaN;
      else if (/^\+?inf(inity)?$/.test(lower)) value = Infinity;
      else if (/^-inf(inity)?$/.test(lower)) value = -Infinity;
      else if (text !== '' && !Number.isNaN(Number(text))) value = Number(text);
      else throw new DosnaError(`fill value ${JSON.stringify(raw)} is not a number`);
    }
  } else if (typeof raw === 'number' && isBigIntDType(dtype)) {
    if (!Number.isInteger(raw)) throw new DosnaError(`fill value ${raw} is not an integer`);
    value = BigInt(raw);
  }
  return castScalar(dtype, value);
}

function positiveInts(value: unknown, what: string, allowZero: boolean): number[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((n) => Number.isSafeInteger(n) && n >= (allowZero ? 0 : 1))) {
    throw new DosnaError(`${what} must be a non-empty list of ${allowZero ? 'non-negative' : 'positive'} integers, got ${JSON.stringify(value)}`);
  }
  return value as number[];
}

/** Checks what a metadata object says, whichever layout it came from. */
export function metaFromFields(name: string, fields: {
  shape: number[]; dtype: string; fillvalue: unknown; chunkSize: number[]; chunkGrid?: number[]; uid?: unknown; filters?: unknown; compressor?: unknown;
}): DatasetMeta {
  const { shape, chunkSize } = fields;
  if (chunkSize.length !== shape.length) throw new DosnaError(`chunk_size ${JSON.stringify(chunkSize)} does not match shape ${JSON.stringify(shape)}`);
  if (fields.chunkGrid && JSON.stringify(fields.chunkGrid) !== JSON.stringify(chunkGrid({ shape, chunkSize }))) {
    throw new DosnaError(`chunk_grid ${JSON.stringify(fields.chunkGrid)} does not match shape ${JSON.stringify(shape)} and chunk_size ${JSON.stringify(chunkSize)}`);
  }
  const dtype = fromNumpyTypeString(fields.dtype);
  const uid = typeof fields.uid === 'string' ? fields.uid : '';
  const compression = fromNumcodecs(fields.filters, fields.compressor, `dataset ${JSON.stringify(name)}`);
  return { name, shape, dtype, chunkSize, fillValue: fillFromText(dtype, fields.fillvalue), uid, ...(compression ? { compression } : {}) };
}

/** A compressed dataset's codecs as numcodecs names them (zarr v2's `filters` and `compressor`). */
export function codecFields(meta: DatasetMeta): { filters?: NumcodecsConfig[] | null; compressor?: NumcodecsConfig } {
  return meta.compression ? toNumcodecs(meta.compression, bytesPerElement(meta.dtype)) : {};
}

const layout: MetaLayout = {
  metaKey: (name) => `${name}/${METADATA_OBJECT}`,
  // The body holds every field (the uid included): its ETag identifies the version.
  generation: (head) => head.etag ?? '',

  encode(meta) {
    const doc = {
      format: 'dosna',
      version: 1,
      shape: meta.shape,
      dtype: toNumpyTypeString(meta.dtype),
      fillvalue: fillToJson(meta.dtype, meta.fillValue),
      chunk_size: meta.chunkSize,
      chunk_grid: chunkGrid(meta),
      uid: meta.uid,
      ...codecFields(meta),
    };
    return { body: new TextEncoder().encode(`${JSON.stringify(doc, null, 1)}\n`), contentType: 'application/json' };
  },

  async read(access: S3Access, name: string) {
    const key = layout.metaKey(name);
    const got = await access.getObject(key);
    if (!got) return undefined;
    const where = `s3://${access.bucket}/${key}`;
    let meta: DatasetMeta;
    try {
      const doc = JSON.parse(new TextDecoder().decode(got.bytes)) as Record<string, unknown>;
      if (typeof doc !== 'object' || doc === null) throw new DosnaError('not a JSON object');
      if (typeof doc.dtype !== 'string') throw new DosnaError('dtype is missing');
      meta = metaFromFields(name, {
        shape: positiveInts(doc.shape, 'shape', true),
        dtype: doc.dtype,
        fillvalue: doc.fillvalue ?? 0,
        chunkSize: positiveInts(doc.chunk_size, 'chunk_size', false),
        chunkGrid: doc.chunk_grid === undefined ? undefined : positiveInts(doc.chunk_grid, 'chunk_grid', true),
        uid: doc.uid,
        filters: doc.filters,
        compressor: doc.compressor,
      });
    } catch (error) {
      throw new CorruptChunkError(`dataset metadata ${where} cannot be read: ${(error as Error).message}`, where, { cause: error });
    }
    return { meta, generation: got.etag ?? '' };
  },

  async list(access: S3Access) {
    const prefixes: string[] = [];
    for await (const page of access.listPages('', '/')) prefixes.push(...page.prefixes);
    const names = prefixes.map((p) => p.slice(0, -1)).filter((n) => n.length > 0);
    // A prefix is a dataset only when its metadata object exists (a delete cut short leaves
    // chunks behind only while it runs: metadata goes last).
    const present = await Promise.all(names.map(async (n) => (await access.head(layout.metaKey(n))) !== undefined));
    return names.filter((_, i) => present[i]).sort();
  },
};

/**
 * Validated client settings for the s3 backend, or for another backend (`zarr` on S3) that
 * takes the same options: `backendName` names it in errors and in the settings.
 */
export function s3Settings(bucket: string, options: Readonly<Record<string, unknown>>, backendName = 's3'): ClientSettings {
  checkOptions(`the ${backendName} backend`, options, [...S3_OPTIONS]);
  let credentials: ClientSettings['credentials'];
  const c = options.credentials;
  if (c !== undefined && c !== null) {
    const cred = c as Record<string, unknown>;
    if (typeof c !== 'object' || typeof cred.accessKeyId !== 'string' || typeof cred.secretAccessKey !== 'string'
      || !cred.accessKeyId || !cred.secretAccessKey || (cred.sessionToken !== undefined && typeof cred.sessionToken !== 'string')) {
      throw new OptionError(`${backendName} option credentials must be { accessKeyId, secretAccessKey, sessionToken? } with string values`);
    }
    credentials = {
      accessKeyId: cred.accessKeyId,
      secretAccessKey: cred.secretAccessKey,
      ...(typeof cred.sessionToken === 'string' ? { sessionToken: cred.sessionToken } : {}),
    };
  }
  const checksums = optString(backendName, options, 'checksums') ?? 'WHEN_REQUIRED';
  if (checksums !== 'WHEN_REQUIRED' && checksums !== 'WHEN_SUPPORTED') {
    throw new OptionError(`${backendName} option checksums must be 'WHEN_REQUIRED' or 'WHEN_SUPPORTED', got ${JSON.stringify(checksums)}`);
  }
  const endpoint = checkEndpoint(backendName, optString(backendName, options, 'endpoint'));
  // Path-style addressing by default for custom endpoints: S3-compatible services rarely
  // have wildcard DNS for virtual-hosted buckets.
  const forcePathStyle = optBoolean(backendName, options, 'forcePathStyle') ?? (endpoint ? true : undefined);
  return {
    backend: backendName,
    bucket: checkBucketName(bucket, backendName),
    endpoint,
    region: optString(backendName, options, 'region'),
    profile: optString(backendName, options, 'profile'),
    ...(forcePathStyle !== undefined ? { forcePathStyle } : {}),
    ...(credentials ? { credentials } : {}),
    checksums,
    ...tuning(backendName, options),
  };
}

export const backend: Backend = {
  name: 's3',
  open(name, options) {
    return new ObjectStore(s3Settings(name, options), layout);
  },
};
