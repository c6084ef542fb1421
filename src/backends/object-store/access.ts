/**
 * One S3 client on one bucket, as the `s3` and `ceph` backends use it: every request bounded
 * (a semaphore of `maxConcurrency`), retried (the SDK's standard mode, plus bodies cut off
 * mid-stream), timed out, paged and batched, with errors that name the operation, bucket, key
 * and HTTP status but never a credential. Conditional writes (`If-Match`, `If-None-Match`)
 * carry the generations of the chunks (their ETags).
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  CreateBucketCommand, DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand,
  HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
  type ListObjectsV2CommandOutput, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ConnectionError, DosnaError } from '../../errors.js';
import type { ClientSettings } from './settings.js';

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
  /** Write only if no object of that key exists (`If-None-Match: *`). */
  readonly ifAbsent?: boolean;
  /** Write only if the object's ETag is still this one (`If-Match`). */
  readonly ifMatch?: string;
}

/** An object as read: its bytes, ETag and user metadata. */
export interface GotObject {
  readonly bytes: Uint8Array;
  readonly etag: string | undefined;
  readonly metadata: Record<string, string>;
}

/** An object's ETag without the quotes HTTP puts around it. */
export const bareEtag = (etag: string): string => etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');

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
  /**
   * Whether `If-Match` must carry the ETag without its quotes. HTTP and AWS take the quoted
   * form; Ceph RGW before Reef compares the bare hex (it answers 412 to the quoted form even
   * when the ETag matches). Found out on the first such 412 (see `put`).
   */
  #bareIfMatch = false;

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

  /** The whole object (or a byte range of it), or undefined when it does not exist. */
  async get(key: string, range?: { start: number; end: number }): Promise<Uint8Array | undefined> {
    return (await this.getObject(key, range))?.bytes;
  }

  /**
   * The object with its ETag and user metadata, or undefined when it does not exist. The body
   * goes into `into` when its length is exactly that (a buffer the caller lends).
   */
  async getObject(key: string, range?: { start: number; end: number }, into?: Uint8Array): Promise<GotObject | undefined> {
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
          const bytes = await readBody(response.Body, response.ContentLength, into);
          this.traffic.bytesRead += bytes.byteLength;
          return { bytes, etag: response.ETag, metadata: response.Metadata ?? {} };
        } catch (error) {
          if (attempt >= this.settings.maxAttempts) throw this.wrap(error, `${operation} (reading the body)`, key);
          await sleep(Math.min(2000, 50 * 2 ** attempt) * Math.random());
        }
      }
    });
  }

  /** User metadata, size and ETag, or undefined when the object does not exist. */
  async head(key: string): Promise<{ metadata: Record<string, string>; size: number; etag: string | undefined } | undefined> {
    try {
      const r = await this.request('HeadObject', key, (c) => c.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })));
      return { metadata: r.Metadata ?? {}, size: Number(r.ContentLength ?? 0), etag: r.ETag };
    } catch (error) {
      if (error instanceof S3RequestError && error.status === 404) return undefined;
      throw error;
    }
  }

  /**
   * Writes an object and returns its new ETag (`''` when the service sends none). With
   * `ifAbsent` or `ifMatch`, returns `undefined` and writes nothing when the condition fails.
   */
  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<string | undefined> {
    const send = async (condition: { IfNoneMatch?: string; IfMatch?: string }) => (await this.request('PutObject', key, (c) => c.send(new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: body,
      ContentLength: body.byteLength,
      ContentType: options.contentType ?? 'application/octet-stream',
      ...(options.metadata ? { Metadata: options.metadata } : {}),
      ...condition,
    })))).ETag ?? '';
    const condition = options.ifMatch !== undefined
      ? { IfMatch: this.#bareIfMatch ? bareEtag(options.ifMatch) : options.ifMatch }
      : options.ifAbsent && this.#conditionalPuts ? { IfNoneMatch: '*' } : {};
    let etag: string;
    try {
      etag = await send(condition);
    } catch (error) {
      if (!(error instanceof S3RequestError)) throw error;
      const failedCondition = error.status === 412 || error.status === 409;
      if (options.ifMatch !== undefined && failedCondition) {
        if (this.#bareIfMatch) return undefined;
        // Changed since, or a service that compares the bare ETag? Only the second if the
        // object still has the ETag we sent.
        const now = await this.head(key);
        if (!now?.etag || bareEtag(now.etag) !== bareEtag(options.ifMatch)) return undefined;
        this.#bareIfMatch = true;
        return this.put(key, body, options);
      }
      if (options.ifAbsent && failedCondition) return undefined;
      // A service without conditional writes: fall back to check-then-write.
      if (options.ifAbsent && (error.status === 501 || error.code === 'NotImplemented')) {
        this.#conditionalPuts = false;
        if (await this.head(key)) return undefined;
        etag = await send({});
      } else if (options.ifMatch !== undefined && (error.status === 501 || error.code === 'NotImplemented')) {
        throw new DosnaError(`${this.settings.backend}: ${this.where} does not support conditional writes (If-Match), which dosna needs to update chunks that several writers share`, { cause: error });
      } else {
        throw error;
      }
    }
    this.traffic.bytesWritten += body.byteLength;
    return etag;
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

/** Reads a response body into one aligned Uint8Array (sized from Content-Length when known; `into` when it fits exactly). */
async function readBody(body: unknown, contentLength: number | undefined, into?: Uint8Array): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const stream = body as AsyncIterable<Uint8Array>;
  if (typeof contentLength === 'number' && Number.isSafeInteger(contentLength)) {
    const out = into?.byteLength === contentLength ? into : new Uint8Array(contentLength);
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
