/**
 * The `ceph` backend: DosNa's Ceph layout, through a Ceph RADOS Gateway (S3 API). The
 * connection name is the bucket, playing the role of DosNa's pool.
 *
 * ```text
 * <bucket>/<dataset>                 the dataset object: body `DosNa Dataset`; user metadata
 *                                    (x-amz-meta-*) shape, dtype, fillvalue, chunk_grid, chunk_size
 *                                    (shapes as `100::100::100`, dtype as a NumPy type string `<f4`,
 *                                    fillvalue as Python's repr: `0.0`, `nan`, `-3`)
 * <bucket>/<dataset>/<i>.<j>.<k>     one chunk: raw little-endian C-order bytes of the full chunk
 * ```
 *
 * Configured from a ceph-style conf file (`conffile`, INI) whose `[dosna]` section (or the one
 * named by option `section`) holds `endpoint`, `access_key`, `secret_key` and `region`, or from
 * the same keys as options (`endpoint`, `accessKey`, `secretKey`, `region`), which win over the
 * file. Without keys, the AWS default chain (AWS_ACCESS_KEY_ID, ...) supplies credentials.
 * Path-style addressing and `WHEN_REQUIRED` checksums are always on: Pacific RGW answers
 * `411 MissingContentLength` to the SDK's default aws-chunked uploads.
 */
import { readFileSync } from 'node:fs';
import { toNumpyTypeString } from '../dtypes.js';
import { CorruptChunkError, DosnaError, OptionError } from '../errors.js';
import { checkOptions } from '../options.js';
import { RESERVED_PREFIX } from '../paths.js';
import type { Backend, DatasetMeta } from '../store.js';
import { checkBucketName, checkEndpoint, optString, tuning, TUNING_OPTIONS, type ClientSettings } from './object-store/settings.js';
import type { S3Access } from './object-store/access.js';
import { chunkGrid, ObjectStore, type MetaLayout } from './object-store/store.js';
import { codecFields, fillToJson, metaFromFields } from './s3.js';

export { S3RequestError } from './object-store/access.js';

/** The body of every dataset object, as DosNa writes it. */
export const SIGNATURE = 'DosNa Dataset';
/** Sizes of a dataset object's body: the signature, or the signature, a newline and a revision uuid. */
const DATASET_OBJECT_SIZES = [SIGNATURE.length, SIGNATURE.length + 37];

/** The conf section read when option `section` is not given. */
export const DEFAULT_SECTION = 'dosna';

const OPTIONS = new Set(['conffile', 'section', 'endpoint', 'accessKey', 'secretKey', 'region', ...TUNING_OPTIONS]);

/**
 * Parses a ceph-style INI conf: `[section]` headers, `key = value` lines, `#`/`;` comments.
 * Keys are normalized as Ceph does (`access key`, `access-key` and `access_key` are one key).
 */
export function parseCephConf(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      const name = header[1].trim();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || !current) continue;
    const key = line.slice(0, eq).trim().toLowerCase().replace(/[\s-]+/g, '_');
    let value = line.slice(eq + 1).trim();
    const quoted = /^"(.*)"$/.exec(value) ?? /^'(.*)'$/.exec(value);
    if (quoted) value = quoted[1];
    else value = value.replace(/\s+[#;].*$/, '');
    current.set(key, value);
  }
  return sections;
}

function confSection(backend: string, file: string, section: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new DosnaError(`${backend}: cannot read conffile ${JSON.stringify(file)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const sections = parseCephConf(text);
  const found = sections.get(section);
  if (!found) {
    throw new OptionError(`${backend}: conffile ${file} has no [${section}] section (it has ${[...sections.keys()].map((s) => `[${s}]`).join(', ') || 'none'}); pick one with option section`);
  }
  return found;
}

/** Validated client settings for the ceph backend (the conf file is read here, at open). */
export function cephSettings(bucket: string, options: Readonly<Record<string, unknown>>): ClientSettings {
  checkOptions('the ceph backend', options, [...OPTIONS]);
  const conffile = optString('ceph', options, 'conffile');
  const section = optString('ceph', options, 'section') ?? DEFAULT_SECTION;
  const conf = conffile ? confSection('ceph', conffile, section) : new Map<string, string>();
  const pick = (option: string, key: string) => optString('ceph', options, option) ?? (conf.get(key) || undefined);
  const endpoint = checkEndpoint('ceph', pick('endpoint', 'endpoint'));
  if (!endpoint) {
    throw new OptionError(`the ceph backend needs the RGW endpoint: option endpoint, or a conffile whose [${section}] section has endpoint = http://host:port`);
  }
  const accessKeyId = pick('accessKey', 'access_key');
  const secretAccessKey = pick('secretKey', 'secret_key');
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
    throw new DosnaError('the ceph backend needs both access_key and secret_key (or neither, to use the AWS environment)');
  }
  return {
    backend: 'ceph',
    bucket: checkBucketName(bucket, 'ceph'),
    endpoint,
    region: pick('region', 'region') ?? 'us-east-1',
    forcePathStyle: true,
    ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
    checksums: 'WHEN_REQUIRED',
    ...tuning('ceph', options),
  };
}

/** `100::100::100`, as DosNa writes tuples into Ceph xattrs. */
export const dumpTuple = (values: readonly number[]): string => values.join('::');

function loadTuple(text: string | undefined, what: string, allowZero: boolean): number[] {
  if (text === undefined) throw new DosnaError(`${what} is missing`);
  const parts = text.trim().replace(/^[([]|[)\]]$/g, '').split(/::|,/).map((p) => p.trim()).filter((p) => p !== '');
  const values = parts.map(Number);
  if (values.length === 0 || !values.every((n) => Number.isSafeInteger(n) && n >= (allowZero ? 0 : 1))) {
    throw new DosnaError(`${what} ${JSON.stringify(text)} is not a list of ${allowZero ? 'non-negative' : 'positive'} integers`);
  }
  return values;
}

/** The fill value as Python's repr writes it, so DosNa's `eval`/`float()` read it back. */
export function fillToRepr(meta: Pick<DatasetMeta, 'dtype' | 'fillValue'>): string {
  const v = fillToJson(meta.dtype, meta.fillValue);
  if (typeof v === 'string') return v;
  const s = String(v);
  return meta.dtype.startsWith('float') && Number.isInteger(v) && !/e/i.test(s) ? `${s}.0` : s;
}

const layout: MetaLayout = {
  metaKey: (name) => name,
  // The body is always the signature: the fields live in the user metadata, which the ETag
  // does not cover, so the generation is the ETag and the fields together.
  generation: (head) => `${head.etag ?? ''} ${JSON.stringify(Object.entries(head.metadata).map(([k, v]) => [k.toLowerCase().replace(/-/g, '_'), v]).sort())}`,

  encode(meta, revision) {
    return {
      // DosNa's body at creation; a replacement (a resize) appends its revision, so the ETag
      // changes with the fields (they live in the user metadata, which the ETag does not cover).
      body: new TextEncoder().encode(revision ? `${SIGNATURE}\n${revision}` : SIGNATURE),
      contentType: 'text/plain',
      metadata: {
        shape: dumpTuple(meta.shape),
        dtype: toNumpyTypeString(meta.dtype),
        fillvalue: fillToRepr(meta),
        chunk_grid: dumpTuple(chunkGrid(meta)),
        chunk_size: dumpTuple(meta.chunkSize),
        ...(meta.uid ? { uid: meta.uid } : {}),
        // Compressed datasets only (Python DosNa has none): the codecs as numcodecs JSON.
        ...Object.fromEntries(Object.entries(codecFields(meta)).map(([k, v]) => [k, JSON.stringify(v)])),
      },
    };
  },

  async read(access: S3Access, name: string) {
    const head = await access.head(name);
    if (!head) return undefined;
    // RGW turns `_` into `-` in metadata names (x-amz-meta-chunk_size comes back as chunk-size).
    const m: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(head.metadata)) m[k.toLowerCase().replace(/-/g, '_')] = v;
    const where = `s3://${access.bucket}/${name}`;
    if (m.shape === undefined && m.dtype === undefined) {
      throw new CorruptChunkError(`object ${where} exists but is not a DosNa dataset (no shape/dtype metadata)`, where);
    }
    try {
      if (m.dtype === undefined) throw new DosnaError('dtype is missing');
      const meta = metaFromFields(name, {
        shape: loadTuple(m.shape, 'shape', true),
        dtype: m.dtype,
        fillvalue: m.fillvalue ?? '0',
        chunkSize: loadTuple(m.chunk_size, 'chunk_size', false),
        chunkGrid: m.chunk_grid === undefined ? undefined : loadTuple(m.chunk_grid, 'chunk_grid', true),
        uid: m.uid,
        filters: m.filters === undefined ? undefined : JSON.parse(m.filters),
        compressor: m.compressor === undefined ? undefined : JSON.parse(m.compressor),
      });
      return { meta, generation: layout.generation(head) };
    } catch (error) {
      throw new CorruptChunkError(`dataset object ${where} has unreadable metadata: ${(error as Error).message}`, where, { cause: error });
    }
  },

  async list(access: S3Access) {
    // Dataset objects are the top-level keys (chunks all sit under `<dataset>/`) whose body is
    // the signature; its length tells them apart without a HEAD each.
    const names: string[] = [];
    for await (const page of access.listPages('', '/')) {
      for (const o of page.objects) if (DATASET_OBJECT_SIZES.includes(o.size) && o.key.length > 0 && !o.key.startsWith(RESERVED_PREFIX)) names.push(o.key);
    }
    return names.sort();
  },
};

export const backend: Backend = {
  name: 'ceph',
  open(name, options) {
    return new ObjectStore(cephSettings(name, options), layout);
  },
};
