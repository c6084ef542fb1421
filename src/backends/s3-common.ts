/**
 * What the `s3` and `ceph` backends share: an S3 client wrapper (bounded request concurrency,
 * retries, timeouts, paged listing, batched deletion, errors that name the operation, bucket,
 * key and HTTP status but never a credential) and a Store over it that leaves only the
 * dataset-metadata layout to each backend.
 *
 * Chunks are objects `<dataset>/<i>.<j>.<k>` holding the raw little-endian C-order bytes of
 * the full chunk in both layouts (DosNa's Ceph key scheme). A PUT replaces an object
 * atomically, so readers see the old chunk or the new, never a mix.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  CreateBucketCommand, DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand,
  HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
  type ListObjectsV2CommandOutput, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { bytesPerElement } from '../dtypes.js';
import { ConnectionError, DatasetExistsError, DatasetNotFoundError, DosnaError, InvalidNameError } from '../errors.js';
import { checkName } from '../names.js';
import type { ChunkIndex, DatasetMeta, Store, StoreCapabilities } from '../store.js';

// ---------------------------------------------------------------------------------------------
// Settings

/** Defaults of the tuning options both backends take. */
export const DEFAULTS = {
  maxConcurrency: 32,
  maxAttempts: 4,
  connectionTimeout: 3000,
  requestTimeout: 30_000,
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
  if (typeof v !== 'string' || v.length === 0) throw new DosnaError(`${backend} option ${key} must be a non-empty string`);
  return v;
}

export function optBoolean(backend: string, options: Readonly<Record<string, unknown>>, key: string): boolean | undefined {
  const v = options[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new DosnaError(`${backend} option ${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function optInteger(backend: string, options: Readonly<Record<string, unknown>>, key: string, min: number): number | undefined {
  const v = options[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new DosnaError(`${backend} option ${key} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function checkEndpoint(backend: string, endpoint: string | undefined): string | undefined {
  if (endpoint === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new DosnaError(`${backend} option endpoint must be a URL such as http://127.0.0.1:7480, got ${JSON.stringify(endpoint)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DosnaError(`${backend} endpoint must be http:// or https://, got ${JSON.stringify(url.protocol)}`);
  }
  if (url.username || url.password) throw new DosnaError(`${backend} endpoint must not carry credentials; use the credential options`);
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

/** A dataset name as it goes into object keys: the core rules, plus valid Unicode (keys are UTF-8). */
export function checkDatasetName(name: unknown): string {
  checkName(name);
  if (!(name as string).isWellFormed()) throw new InvalidNameError(`dataset name ${JSON.stringify(name)} is not valid Unicode (lone surrogate)`);
  return name as string;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** An S3 request that failed (after the SDK's retries): names the operation, bucket, key and HTTP status. */
export class S3RequestError extends ConnectionError {
  readonly operation: string;
  readonly bucket: string;
  readonly key: string | undefined;
  /** HTTP status, or undefined when no response came (refused, reset, timed out). */
  readonly status: number | undefined;
  /** S3 error code (`NoSuchBucket`, `SlowDown`, ...) or the network error code (`ECONNREFUSED`). */
  readonly code: string | undefined;
  constructor(message: string, fields: { operation: string; bucket: string; key?: string; status?: number; code?: string }, options?: ErrorOptions) {
    super(message, options);
    this.operation = fields.operation;
    this.bucket = fields.bucket;
    this.key = fields.key;
    this.status = fields.status;
    this.code = fields.code;
  }
}

interface SdkErrorLike {
  name?: string;
  message?: string;
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  cause?: unknown;
}

function statusOf(error: unknown): number | undefined {
  return (error as SdkErrorLike | undefined)?.$metadata?.httpStatusCode;
}

function codeOf(error: unknown): string | undefined {
  const e = error as SdkErrorLike | undefined;
  if (!e) return undefined;
  const networkCode = typeof e.code === 'string' ? e.code : (e.cause as SdkErrorLike | undefined)?.code;
  return e.Code ?? (e.name && e.name !== 'Error' && e.name !== 'S3ServiceException' ? e.name : undefined) ?? networkCode;
}

function isNotFound(error: unknown): boolean {
  return statusOf(error) === 404 && codeOf(error) !== 'NoSuchBucket';
}

/** Plain `Error` type names that are not worth repeating in messages. */
const GENERIC_NAMES = new Set(['Error', 'UnknownError', 'S3ServiceException']);

// ---------------------------------------------------------------------------------------------
// The client wrapper

/** A counting semaphore: at most `n` holders at once, waiters served in order. */
export class Semaphore {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

/** Counters of what a client did; tests and benchmarks read them. */
export interface S3Traffic {
  requests: number;
  bytesRead: number;
  bytesWritten: number;
}

export interface PutOptions {
  readonly metadata?: Record<string, string>;
  readonly contentType?: string;
  /** Fail with `DatasetExistsError`-worthy `false` instead of overwriting an existing object. */
  readonly ifAbsent?: boolean;
}

export interface ListedObject {
  readonly key: string;
  readonly size: number;
}

/** One S3 client on one bucket, with every request bounded, retried and its errors cleaned. */
export class S3Access {
  readonly settings: ClientSettings;
  readonly traffic: S3Traffic = { requests: 0, bytesRead: 0, bytesWritten: 0 };
  #client: S3Client | undefined;
  readonly #limit: Semaphore;
  readonly #secrets: string[];
  #conditionalPuts = true;

  constructor(settings: ClientSettings) {
    this.settings = settings;
    this.#limit = new Semaphore(settings.maxConcurrency);
    this.#secrets = [settings.credentials?.secretAccessKey, settings.credentials?.sessionToken, settings.credentials?.accessKeyId]
      .filter((s): s is string => typeof s === 'string' && s.length >= 4);
    for (const name of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ACCESS_KEY_ID']) {
      const v = process.env[name];
      if (v && v.length >= 4) this.#secrets.push(v);
    }
  }

  get bucket(): string {
    return this.settings.bucket;
  }

  /** Where requests go, for messages: the endpoint, or `AWS S3`. */
  get where(): string {
    return this.settings.endpoint ?? `AWS S3${this.settings.region ? ` (${this.settings.region})` : ''}`;
  }

  open(): void {
    if (this.#client) return;
    const s = this.settings;
    const agentOptions = { keepAlive: true, maxSockets: s.maxConcurrency, maxFreeSockets: s.maxConcurrency };
    const config: S3ClientConfig = {
      ...(s.endpoint ? { endpoint: s.endpoint } : {}),
      ...(s.region ? { region: s.region } : {}),
      ...(s.profile ? { profile: s.profile } : {}),
      ...(s.forcePathStyle !== undefined ? { forcePathStyle: s.forcePathStyle } : {}),
      ...(s.credentials ? { credentials: { ...s.credentials } } : {}),
      maxAttempts: s.maxAttempts,
      retryMode: 'standard',
      requestChecksumCalculation: s.checksums,
      responseChecksumValidation: s.checksums,
      requestHandler: new NodeHttpHandler({
        connectionTimeout: s.connectionTimeout,
        // An idle-socket timeout, not a cap on the whole request: a big chunk on a slow link
        // may take long, but a request that moves no byte for this long has stalled.
        socketTimeout: s.requestTimeout,
        httpAgent: new HttpAgent(agentOptions),
        httpsAgent: new HttpsAgent(agentOptions),
      }),
    };
    this.#client = new S3Client(config);
  }

  close(): void {
    this.#client?.destroy();
    this.#client = undefined;
  }

  private get client(): S3Client {
    if (!this.#client) throw new ConnectionError(`${this.settings.backend} connection ${JSON.stringify(this.bucket)} is not connected; call connect() first`);
    return this.#client;
  }

  /** Removes every credential from a text. */
  scrub(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.split(secret).join('***');
    return out;
  }

  /** The error to throw for a failed request: names operation, bucket, key, status; never a credential. */
  wrap(error: unknown, operation: string, key?: string): DosnaError {
    if (error instanceof DosnaError) return error;
    const e = (error ?? {}) as SdkErrorLike;
    const status = statusOf(error);
    const code = codeOf(error);
    const attempts = e.$metadata?.attempts;
    let detail = typeof e.message === 'string' && e.message && e.message !== code && !/^UnknownError$/.test(e.message) ? e.message : '';
    if (/Region is missing/i.test(detail)) detail += ' (set the region option, AWS_REGION, or a region in the AWS config file)';
    if (/Could not load credentials/i.test(detail)) detail += ' (give credentials, a profile, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a shared credentials file)';
    const parts = [
      status !== undefined ? `HTTP ${status}` : 'no response',
      code && !GENERIC_NAMES.has(code) ? code : undefined,
      detail || undefined,
    ].filter(Boolean);
    const target = `s3://${this.bucket}${key !== undefined ? `/${key}` : ''}`;
    const tries = attempts && attempts > 1 ? ` after ${attempts} attempts` : '';
    const message = this.scrub(`${this.settings.backend}: ${operation} ${target} at ${this.where} failed${tries}: ${parts.join(': ')}`);
    // The SDK error may carry request and response details: keep only a scrubbed summary.
    const cause = new Error(this.scrub(`${e.name ?? 'Error'}: ${e.message ?? String(error)}`));
    return new S3RequestError(message, { operation, bucket: this.bucket, key, status, code }, { cause });
  }

  /** Runs one request under the concurrency bound; SDK errors become `S3RequestError`. */
  private async request<T>(operation: string, key: string | undefined, fn: (client: S3Client) => Promise<T>): Promise<T> {
    const client = this.client;
    return this.#limit.run(async () => {
      this.traffic.requests++;
      try {
        return await fn(client);
      } catch (error) {
        throw this.wrap(error, operation, key);
      }
    });
  }

  /** HeadBucket; creates the bucket when it is missing and `create` is set. */
  async checkBucket(): Promise<void> {
    const client = this.client;
    const bucket = this.bucket;
    try {
      await this.#limit.run(() => client.send(new HeadBucketCommand({ Bucket: bucket })));
      return;
    } catch (error) {
      const status = statusOf(error);
      if (status !== 404) {
        const wrapped = this.wrap(error, 'HeadBucket');
        if (status === 403) {
          throw new S3RequestError(`${wrapped.message} (access denied: check the credentials and that they may use bucket ${JSON.stringify(bucket)})`,
            { operation: 'HeadBucket', bucket, status, code: codeOf(error) }, { cause: wrapped.cause });
        }
        throw wrapped;
      }
    }
    if (!this.settings.create) {
      throw new S3RequestError(
        `${this.settings.backend}: bucket ${JSON.stringify(bucket)} does not exist at ${this.where}; create it, or pass create: true to have dosna create it`,
        { operation: 'HeadBucket', bucket, status: 404, code: 'NoSuchBucket' },
      );
    }
    let region = this.settings.region;
    try {
      region ??= await client.config.region();
    } catch { /* no region: CreateBucket without a location constraint */ }
    try {
      await this.request('CreateBucket', undefined, (c) => c.send(new CreateBucketCommand({
        Bucket: bucket,
        ...(region && region !== 'us-east-1' && !this.settings.endpoint ? { CreateBucketConfiguration: { LocationConstraint: region as never } } : {}),
      })));
    } catch (error) {
      // Another process made it first: fine.
      if (error instanceof S3RequestError && (error.code === 'BucketAlreadyOwnedByYou' || (error.status === 409 && error.code !== 'BucketAlreadyExists'))) return;
      throw error;
    }
  }

  /** The whole object, or undefined when it does not exist. */
  async get(key: string, range?: { start: number; end: number }): Promise<Uint8Array | undefined> {
    const client = this.client;
    const operation = range ? 'GetObject(range)' : 'GetObject';
    return this.#limit.run(async () => {
      // The SDK retries a failed request; a body cut off mid-stream is retried here.
      for (let attempt = 1; ; attempt++) {
        this.traffic.requests++;
        let response;
        try {
          response = await client.send(new GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            ...(range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {}),
          }));
        } catch (error) {
          if (isNotFound(error)) return undefined;
          throw this.wrap(error, operation, key);
        }
        try {
          const bytes = await readBody(response.Body, response.ContentLength);
          this.traffic.bytesRead += bytes.byteLength;
          return bytes;
        } catch (error) {
          if (attempt >= this.settings.maxAttempts) throw this.wrap(error, `${operation} (reading the body)`, key);
          await sleep(Math.min(2000, 50 * 2 ** attempt) * Math.random());
        }
      }
    });
  }

  /** User metadata and size, or undefined when the object does not exist. */
  async head(key: string): Promise<{ metadata: Record<string, string>; size: number } | undefined> {
    try {
      const r = await this.request('HeadObject', key, (c) => c.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })));
      return { metadata: r.Metadata ?? {}, size: Number(r.ContentLength ?? 0) };
    } catch (error) {
      if (error instanceof S3RequestError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** Writes an object; with `ifAbsent`, returns false (writing nothing) when it already exists. */
  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<boolean> {
    const send = (conditional: boolean) => this.request('PutObject', key, (c) => c.send(new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: body,
      ContentLength: body.byteLength,
      ContentType: options.contentType ?? 'application/octet-stream',
      ...(options.metadata ? { Metadata: options.metadata } : {}),
      ...(conditional ? { IfNoneMatch: '*' } : {}),
    })));
    try {
      await send(Boolean(options.ifAbsent) && this.#conditionalPuts);
    } catch (error) {
      if (!(error instanceof S3RequestError)) throw error;
      if (options.ifAbsent && (error.status === 412 || error.status === 409)) return false;
      // A service without conditional writes: fall back to check-then-write.
      if (options.ifAbsent && (error.status === 501 || error.code === 'NotImplemented')) {
        this.#conditionalPuts = false;
        if (await this.head(key)) return false;
        await send(false);
      } else {
        throw error;
      }
    }
    this.traffic.bytesWritten += body.byteLength;
    return true;
  }

  async delete(key: string): Promise<void> {
    await this.request('DeleteObject', key, (c) => c.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
  }

  /** Deletes keys in batches of 1000 (DeleteObjects' limit), batches in parallel. */
  async deleteMany(keys: readonly string[]): Promise<void> {
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += 1000) batches.push(keys.slice(i, i + 1000));
    await Promise.all(batches.map(async (batch) => {
      const r = await this.request('DeleteObjects', batch[0], (c) => c.send(new DeleteObjectsCommand({
        Bucket: this.bucket,
        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      })));
      const failed = (r.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const first = failed[0];
        throw new S3RequestError(
          this.scrub(`${this.settings.backend}: DeleteObjects on s3://${this.bucket} at ${this.where} failed for ${failed.length} of ${batch.length} keys, first ${JSON.stringify(first.Key)}: ${first.Code ?? ''} ${first.Message ?? ''}`.trim()),
          { operation: 'DeleteObjects', bucket: this.bucket, key: first.Key, code: first.Code },
        );
      }
    }));
  }

  /** Pages through ListObjectsV2 (1000 keys a page), following continuation tokens. */
  async *listPages(prefix: string, delimiter?: string): AsyncGenerator<{ objects: ListedObject[]; prefixes: string[] }> {
    let token: string | undefined;
    do {
      const page: ListObjectsV2CommandOutput = await this.request('ListObjectsV2', prefix, (c) => c.send(new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: prefix,
        ...(delimiter ? { Delimiter: delimiter } : {}),
        ...(token ? { ContinuationToken: token } : {}),
      })));
      yield {
        objects: (page.Contents ?? []).filter((o) => o.Key !== undefined).map((o) => ({ key: o.Key!, size: Number(o.Size ?? 0) })),
        prefixes: (page.CommonPrefixes ?? []).map((p) => p.Prefix).filter((p): p is string => p !== undefined),
      };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Every key under a prefix. */
  async listKeys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const page of this.listPages(prefix)) for (const o of page.objects) keys.push(o.key);
    return keys;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Reads a response body into one aligned Uint8Array (sized from Content-Length when known). */
async function readBody(body: unknown, contentLength: number | undefined): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const stream = body as AsyncIterable<Uint8Array>;
  if (typeof contentLength === 'number' && Number.isSafeInteger(contentLength)) {
    const out = new Uint8Array(contentLength);
    let offset = 0;
    for await (const part of stream) {
      if (offset + part.byteLength > contentLength) throw new Error(`response body longer than its Content-Length ${contentLength}`);
      out.set(part, offset);
      offset += part.byteLength;
    }
    if (offset !== contentLength) throw new Error(`response body ended after ${offset} of ${contentLength} bytes`);
    return out;
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const part of stream) {
    parts.push(part);
    total += part.byteLength;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The store

/** How one backend lays out a dataset's metadata; chunks are `<dataset>/<i>.<j>.<k>` in both. */
export interface MetaLayout {
  /** Object key of the dataset's metadata object. */
  metaKey(name: string): string;
  /** Body and user metadata of the metadata object. */
  encode(meta: DatasetMeta): { body: Uint8Array; metadata?: Record<string, string>; contentType: string };
  /** Reads a dataset's metadata; undefined when the dataset does not exist. */
  read(access: S3Access, name: string): Promise<DatasetMeta | undefined>;
  /** Names of every dataset in the bucket, sorted. */
  list(access: S3Access): Promise<string[]>;
}

const CHUNK_NAME = /^\d+(?:\.\d+)*$/;

export function chunkGrid(meta: Pick<DatasetMeta, 'shape' | 'chunkSize'>): number[] {
  return meta.shape.map((n, a) => Math.ceil(n / meta.chunkSize[a]));
}

/** A Store over one bucket; the `s3` and `ceph` backends differ only in their {@link MetaLayout}. */
export class ObjectStore implements Store {
  readonly capabilities: StoreCapabilities = { rangeReads: true };
  readonly access: S3Access;
  readonly #layout: MetaLayout;

  constructor(settings: ClientSettings, layout: MetaLayout) {
    this.access = new S3Access(settings);
    this.#layout = layout;
  }

  async connect(): Promise<void> {
    this.access.open();
    try {
      await this.access.checkBucket();
    } catch (error) {
      this.access.close();
      throw error;
    }
  }

  async disconnect(): Promise<void> {
    this.access.close();
  }

  listDatasets(): Promise<string[]> {
    return this.#layout.list(this.access);
  }

  readMeta(name: string): Promise<DatasetMeta | undefined> {
    return this.#layout.read(this.access, checkDatasetName(name));
  }

  async createMeta(meta: DatasetMeta): Promise<void> {
    checkDatasetName(meta.name);
    if (meta.options && Object.keys(meta.options).length > 0) {
      throw new DosnaError(`the ${this.access.settings.backend} backend takes no dataset options, got ${Object.keys(meta.options).join(', ')}`);
    }
    const exists = () => new DatasetExistsError(`dataset ${JSON.stringify(meta.name)} already exists in bucket ${JSON.stringify(this.access.bucket)}`);
    // A HEAD, not a read: cheap, and an object of that name that is not a dataset is not
    // overwritten either. The conditional PUT below settles races.
    if (await this.access.head(this.#layout.metaKey(meta.name))) throw exists();
    const { body, metadata, contentType } = this.#layout.encode(meta);
    const written = await this.access.put(this.#layout.metaKey(meta.name), body, { metadata, contentType, ifAbsent: true });
    if (!written) throw exists();
  }

  async deleteDataset(name: string): Promise<void> {
    checkDatasetName(name);
    const metaKey = this.#layout.metaKey(name);
    if (!(await this.#layout.read(this.access, name))) {
      throw new DatasetNotFoundError(`dataset ${JSON.stringify(name)} not found in bucket ${JSON.stringify(this.access.bucket)}`);
    }
    // Chunks first, the metadata last: an interrupted delete leaves a dataset (with fewer
    // chunks), never chunks without a dataset.
    const keys = (await this.access.listKeys(`${name}/`)).filter((k) => k !== metaKey);
    await this.access.deleteMany(keys);
    await this.access.delete(metaKey);
  }

  chunkKey(meta: DatasetMeta, index: ChunkIndex): string {
    const grid = chunkGrid(meta);
    if (index.length !== grid.length || !index.every((i, a) => Number.isSafeInteger(i) && i >= 0 && i < Math.max(1, grid[a]))) {
      throw new DosnaError(`chunk index ${JSON.stringify(index)} is not valid for dataset ${JSON.stringify(meta.name)} with chunk grid ${JSON.stringify(grid)}`);
    }
    return `${meta.name}/${index.join('.')}`;
  }

  private chunkBytes(meta: DatasetMeta): number {
    return meta.chunkSize.reduce((a, b) => a * b, 1) * bytesPerElement(meta.dtype);
  }

  async readChunk(meta: DatasetMeta, index: ChunkIndex): Promise<Uint8Array | undefined> {
    const key = this.chunkKey(meta, index);
    const bytes = await this.access.get(key);
    if (bytes && bytes.byteLength !== this.chunkBytes(meta)) {
      throw new DosnaError(`chunk object s3://${this.access.bucket}/${key} holds ${bytes.byteLength} bytes, not the ${this.chunkBytes(meta)} of a full ${meta.chunkSize.join('x')} ${meta.dtype} chunk`);
    }
    return bytes;
  }

  async readChunkRange(meta: DatasetMeta, index: ChunkIndex, start: number, end: number): Promise<Uint8Array | undefined> {
    const key = this.chunkKey(meta, index);
    const total = this.chunkBytes(meta);
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && start <= end && end <= total)) {
      throw new DosnaError(`byte range [${start}, ${end}) is outside chunk ${key} of ${total} bytes`);
    }
    if (start === end) return (await this.hasChunk(meta, index)) ? new Uint8Array(0) : undefined;
    const bytes = await this.access.get(key, { start, end });
    if (bytes && bytes.byteLength !== end - start) {
      throw new DosnaError(`range GET of s3://${this.access.bucket}/${key} bytes ${start}-${end - 1} returned ${bytes.byteLength} bytes; the chunk object is shorter than a full chunk`);
    }
    return bytes;
  }

  async writeChunk(meta: DatasetMeta, index: ChunkIndex, bytes: Uint8Array): Promise<void> {
    const key = this.chunkKey(meta, index);
    if (bytes.byteLength !== this.chunkBytes(meta)) {
      throw new DosnaError(`chunk ${key} must be ${this.chunkBytes(meta)} bytes, got ${bytes.byteLength}`);
    }
    await this.access.put(key, bytes);
  }

  async hasChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    return (await this.access.head(this.chunkKey(meta, index))) !== undefined;
  }

  async deleteChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    const key = this.chunkKey(meta, index);
    if (!(await this.access.head(key))) return false;
    await this.access.delete(key);
    return true;
  }

  async listChunks(meta: DatasetMeta): Promise<ChunkIndex[]> {
    const prefix = `${checkDatasetName(meta.name)}/`;
    const ndim = meta.shape.length;
    const out: ChunkIndex[] = [];
    for (const key of await this.access.listKeys(prefix)) {
      const rest = key.slice(prefix.length);
      if (!CHUNK_NAME.test(rest)) continue;
      const index = rest.split('.').map(Number);
      if (index.length === ndim) out.push(index);
    }
    return out;
  }
}
