/**
 * The `zarr` backend on S3 (`storage: 's3'`): the connection is the zarr group at the root of a
 * bucket, laid out with exactly the keys a folder has (format.ts), so zarr-python, zarrita.js
 * and TensorStore read it through their S3 stores, and a folder copied to a bucket (or back)
 * stays the same array.
 *
 * Chunk I/O is the object store's (`object-store/store.ts`): bounded and retried requests,
 * conditional PUTs on ETags, range reads, numcodecs framing, the dataset's uid on every chunk.
 * What differs is zarr's: metadata documents (`zarr.json`, or `.zarray` + `.zattrs`), chunk
 * keys (`c/i/j` in v3, `i.j` in v2), groups as zarr groups, and attributes inside zarr's own
 * documents. Every change of a document is a PUT conditional on the ETag it was based on.
 *
 * The uid of an array (what tells a re-created array from the one a handle opened) is also
 * kept as user metadata of its metadata object: a v2 `.zarray` does not change when an array of
 * the same shape is made again, and its generation must.
 */
import type { Attrs, AttrsVersion } from '../../attrs.js';
import { CorruptChunkError, DatasetExistsError, DatasetNotFoundError, DosnaError, DTypeError, GroupExistsError, GroupNotFoundError, OptionError } from '../../errors.js';
import { checkPath, isValidPath, parentOf, RESERVED_PREFIX, ROOT } from '../../paths.js';
import type { AttrsOwner, ChunkIndex, ChunkVersion, DatasetMeta, Generation, MetaVersion, NodeEntry, NodeKind } from '../../store.js';
import type { S3Access } from '../object-store/access.js';
import { checkDatasetName, type ClientSettings } from '../object-store/settings.js';
import { ObjectStore, UID_METADATA, type MetaLayout } from '../object-store/store.js';
import { chunkKey, decodeArray, encodeArray, encodeGroup, FILES, refuseSharded, shardingOf, splitAttrs, type ZarrFormat } from './format.js';
import { decodeShard } from './sharding.js';

const JSON_TYPE = 'application/json';
const CHUNK_V2 = /^\d+(?:\.\d+)*$/;
const CHUNK_V3 = /^c(?:\/\d+)*$/;

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const body = (s: string) => new TextEncoder().encode(s);

/** A node's document key: `<path>/<file>`, or `<file>` for the root group. */
const keyOf = (nodePath: string, file: string) => (nodePath === ROOT ? file : `${nodePath}/${file}`);

/** An array as read: metadata, attributes, and the ETags of the objects they came from. */
interface ArrayRead {
  readonly meta: DatasetMeta;
  readonly attrs: Attrs;
  /** The metadata's generation: its object's ETag and the uid in its user metadata. */
  readonly generation: Generation;
  readonly metaEtag: string;
  /** The attributes' generation: v3 the metadata object's ETag, v2 `.zattrs`' (null when absent). */
  readonly attrsGeneration: Generation | null;
}

function metaLayout(format: ZarrFormat): MetaLayout & { readArray(access: S3Access, name: string): Promise<ArrayRead | undefined> } {
  const files = FILES[format];
  const generationOf = (etag: string | undefined, metadata: Record<string, string>) => `${etag ?? ''}:${metadata[UID_METADATA] ?? ''}`;
  const layout = {
    metaKey: (name: string) => keyOf(name, files.array),
    generation: (head: { etag: string | undefined; metadata: Record<string, string> }) => generationOf(head.etag, head.metadata),
    encode(meta: DatasetMeta) {
      return { body: body(encodeArray(format, meta, {})[files.array]), metadata: { [UID_METADATA]: meta.uid }, contentType: JSON_TYPE };
    },
    async readArray(access: S3Access, name: string): Promise<ArrayRead | undefined> {
      const key = layout.metaKey(name);
      const got = await access.getObject(key);
      if (!got) return undefined;
      const where = `s3://${access.bucket}/${key}`;
      if (format === 3) {
        // A group's document has the same key: not an array, so no dataset here.
        try {
          if ((JSON.parse(text(got.bytes)) as { node_type?: unknown }).node_type === 'group') return undefined;
        } catch { /* not JSON: reported below */ }
      }
      const attrsGot = format === 2 ? await access.getObject(keyOf(name, '.zattrs')) : undefined;
      try {
        const { meta, attrs } = decodeArray(format, name, text(got.bytes), attrsGot && text(attrsGot.bytes), where);
        // The uid the metadata object carries is the array's (see the module's comment).
        const uid = got.metadata[UID_METADATA] || meta.uid;
        return {
          meta: { ...meta, uid }, attrs, metaEtag: got.etag ?? '', generation: generationOf(got.etag, got.metadata),
          attrsGeneration: format === 3 ? got.etag ?? '' : attrsGot ? attrsGot.etag ?? '' : null,
        };
      } catch (error) {
        if (error instanceof OptionError || error instanceof DTypeError) throw error;
        throw new CorruptChunkError(`zarr array metadata ${where} cannot be read: ${(error as Error).message}`, where, { cause: error });
      }
    },
    async read(access: S3Access, name: string): Promise<MetaVersion | undefined> {
      const found = await layout.readArray(access, name);
      return found && { meta: found.meta, generation: found.generation };
    },
    async list(access: S3Access): Promise<string[]> {
      const names: string[] = [];
      for await (const page of access.listPages('', '/')) names.push(...page.prefixes.map((p) => p.slice(0, -1)));
      const arrays = await Promise.all(names.map(async (n) => isValidPath(n) && (await layout.readArray(access, n)) !== undefined));
      return names.filter((_, i) => arrays[i]).sort();
    },
  };
  return layout;
}

/** A zarr hierarchy (v3 or v2) in one bucket. */
export class ZarrObjectStore extends ObjectStore {
  readonly #format: ZarrFormat;
  readonly #layout: ReturnType<typeof metaLayout>;

  constructor(settings: ClientSettings, format: ZarrFormat) {
    const layout = metaLayout(format);
    super(settings, layout);
    this.#format = format;
    this.#layout = layout;
  }

  private get files() {
    return FILES[this.#format];
  }

  private locate(key: string): string {
    return `s3://${this.access.bucket}/${key}`;
  }

  private notFound(name: string): DatasetNotFoundError {
    return new DatasetNotFoundError(`dataset ${JSON.stringify(name)} not found in bucket ${JSON.stringify(this.access.bucket)}`);
  }

  private groupNotFound(groupPath: string): GroupNotFoundError {
    return new GroupNotFoundError(`group ${JSON.stringify(groupPath)} not found in bucket ${JSON.stringify(this.access.bucket)}`);
  }

  /** The root group's document is written when the bucket has none (a new hierarchy). */
  override async connect(): Promise<void> {
    await super.connect();
    const kind = await this.kindAt(ROOT);
    if (kind === 'dataset') throw new DosnaError(`bucket ${JSON.stringify(this.access.bucket)} holds a zarr array at its root, not a group`);
    if (kind === undefined) await this.putGroup(ROOT, {}, null);
  }

  // -------------------------------------------------------------------------------------------
  // Groups

  /** What the node at `nodePath` is in this format (the root included). */
  private async kindAt(nodePath: string): Promise<NodeKind | undefined> {
    if (this.#format === 2) {
      const [array, group] = await Promise.all([this.access.head(keyOf(nodePath, '.zarray')), this.access.head(keyOf(nodePath, '.zgroup'))]);
      return array ? 'dataset' : group ? 'group' : undefined;
    }
    const key = keyOf(nodePath, 'zarr.json');
    const got = await this.access.getObject(key);
    if (!got) return undefined;
    try {
      const type = (JSON.parse(text(got.bytes)) as { node_type?: unknown }).node_type;
      return type === 'array' ? 'dataset' : type === 'group' ? 'group' : undefined;
    } catch (error) {
      throw new CorruptChunkError(`${this.locate(key)} is not JSON: ${(error as Error).message}`, this.locate(key), { cause: error });
    }
  }

  override async nodeKind(nodePath: string): Promise<NodeKind | undefined> {
    return nodePath === ROOT ? 'group' : this.kindAt(checkPath(nodePath));
  }

  private async requireGroup(groupPath: string): Promise<void> {
    if (groupPath !== ROOT && (await this.kindAt(groupPath)) !== 'group') throw this.groupNotFound(groupPath);
  }

  /** Writes a group's documents: v3 its zarr.json, v2 its .zgroup (when new) and .zattrs. */
  private async putGroup(groupPath: string, attrs: Attrs, expected: Generation | null): Promise<Generation | undefined> {
    const docs = encodeGroup(this.#format, attrs);
    const condition = expected === null ? { ifAbsent: true } : { ifMatch: expected };
    if (this.#format === 3) return this.access.put(keyOf(groupPath, 'zarr.json'), body(docs['zarr.json']), { contentType: JSON_TYPE, ...condition });
    if (expected === null && !(await this.access.head(keyOf(groupPath, '.zgroup')))) {
      await this.access.put(keyOf(groupPath, '.zgroup'), body(docs['.zgroup']), { contentType: JSON_TYPE, ifAbsent: true });
    }
    return this.access.put(keyOf(groupPath, '.zattrs'), body(docs['.zattrs']), { contentType: JSON_TYPE, ...condition });
  }

  override async createGroup(groupPath: string): Promise<boolean> {
    checkPath(groupPath, 'group');
    const kind = await this.kindAt(groupPath);
    if (kind === 'group') return false;
    if (kind === 'dataset') throw new DatasetExistsError(`a dataset named ${JSON.stringify(groupPath)} exists in bucket ${JSON.stringify(this.access.bucket)}`);
    await this.requireGroup(parentOf(groupPath));
    const docs = encodeGroup(this.#format, {});
    // Conditional: of two processes making it (or an array of that path), one writes the document.
    const marker = this.#format === 3 ? 'zarr.json' : '.zgroup';
    const etag = await this.access.put(keyOf(groupPath, marker), body(docs[marker]), { contentType: JSON_TYPE, ifAbsent: true });
    if (etag === undefined) {
      if ((await this.kindAt(groupPath)) === 'dataset') throw new DatasetExistsError(`a dataset named ${JSON.stringify(groupPath)} exists in bucket ${JSON.stringify(this.access.bucket)}`);
      return false;
    }
    if (this.#format === 2) {
      if (await this.access.head(keyOf(groupPath, '.zarray'))) {
        // An array of that path was made in between: the array stays, the marker goes.
        await this.access.delete(keyOf(groupPath, '.zgroup'));
        throw new DatasetExistsError(`a dataset named ${JSON.stringify(groupPath)} exists in bucket ${JSON.stringify(this.access.bucket)}`);
      }
      await this.access.put(keyOf(groupPath, '.zattrs'), body(docs['.zattrs']), { contentType: JSON_TYPE });
    }
    return true;
  }

  override async deleteGroup(groupPath: string): Promise<void> {
    if (groupPath === ROOT) throw new DosnaError('the root group cannot be deleted');
    await this.requireGroup(checkPath(groupPath, 'group'));
    if ((await this.list(groupPath)).length > 0) throw new DosnaError(`group ${JSON.stringify(groupPath)} is not empty`);
    // The marker last: a delete cut short leaves a group.
    if (this.#format === 2) await this.access.delete(keyOf(groupPath, '.zattrs'));
    await this.access.delete(keyOf(groupPath, this.files.group));
  }

  override async list(groupPath: string): Promise<NodeEntry[]> {
    await this.requireGroup(groupPath);
    const prefix = groupPath === ROOT ? '' : `${groupPath}/`;
    const names: string[] = [];
    for await (const page of this.access.listPages(prefix, '/')) names.push(...page.prefixes.map((p) => p.slice(prefix.length, -1)));
    const candidates = names.filter((n) => n.length > 0 && !n.startsWith(RESERVED_PREFIX) && isValidPath(prefix + n));
    const kinds = await Promise.all(candidates.map((n) => this.kindAt(prefix + n)));
    return candidates
      .map((name, i) => ({ name, kind: kinds[i] }))
      .filter((e): e is NodeEntry => e.kind !== undefined)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  // -------------------------------------------------------------------------------------------
  // Arrays

  /** The array of this incarnation (its uid), or `DatasetNotFoundError`. */
  private async currentArray(meta: DatasetMeta): Promise<ArrayRead> {
    const found = await this.#layout.readArray(this.access, checkDatasetName(meta.name));
    if (!found || (meta.uid && found.meta.uid !== meta.uid)) throw this.notFound(meta.name);
    return found;
  }

  override async listDatasets(): Promise<string[]> {
    return this.#layout.list(this.access);
  }

  override async metaGeneration(name: string): Promise<Generation | null> {
    return (await this.#layout.read(this.access, checkDatasetName(name)))?.generation ?? null;
  }

  override async createMeta(meta: DatasetMeta): Promise<Generation> {
    checkDatasetName(meta.name);
    if (meta.options && Object.keys(meta.options).length > 0) throw new OptionError(`the zarr backend takes no dataset options, got ${Object.keys(meta.options).join(', ')}`);
    const exists = () => new DatasetExistsError(`dataset ${JSON.stringify(meta.name)} already exists in bucket ${JSON.stringify(this.access.bucket)}`);
    const groupThere = () => new GroupExistsError(`a group named ${JSON.stringify(meta.name)} exists in bucket ${JSON.stringify(this.access.bucket)}`);
    const kind = await this.kindAt(meta.name);
    if (kind === 'dataset') throw exists();
    if (kind === 'group') throw groupThere();
    await this.requireGroup(parentOf(meta.name));
    const docs = encodeArray(this.#format, meta, {});
    const metadata = { [UID_METADATA]: meta.uid };
    // Conditional: of two processes creating it (or a group of that path), one writes the document.
    const key = this.#layout.metaKey(meta.name);
    const etag = await this.access.put(key, body(docs[this.files.array]), { metadata, contentType: JSON_TYPE, ifAbsent: true });
    if (etag === undefined) throw (await this.kindAt(meta.name)) === 'group' ? groupThere() : exists();
    if (this.#format === 2 && (await this.access.head(keyOf(meta.name, '.zgroup')))) {
      await this.access.delete(key);
      throw groupThere();
    }
    // Nobody can have written a chunk of this new array yet: anything else under its prefix is
    // left from an earlier one of that name.
    const leftovers = (await this.access.listKeys(`${meta.name}/`)).filter((k) => k !== key);
    if (leftovers.length > 0) await this.access.deleteMany(leftovers);
    if (this.#format === 2) await this.access.put(keyOf(meta.name, '.zattrs'), body(docs['.zattrs']), { contentType: JSON_TYPE });
    return this.#layout.generation({ etag, metadata });
  }

  override async deleteDataset(name: string): Promise<void> {
    if ((await this.kindAt(checkDatasetName(name))) !== 'dataset') throw this.notFound(name);
    await super.deleteDataset(name);
  }

  override async writeMetaIf(meta: DatasetMeta, expected: Generation): Promise<Generation | undefined> {
    const current = await this.currentArray(meta);
    refuseSharded(current.meta, 'resized');
    if (current.generation !== expected) return undefined;
    // v3's document holds the attributes too: they are kept as they are.
    const doc = encodeArray(this.#format, meta, current.attrs)[this.files.array];
    const metadata = { [UID_METADATA]: current.meta.uid };
    const etag = await this.access.put(this.#layout.metaKey(meta.name), body(doc), { metadata, contentType: JSON_TYPE, ifMatch: current.metaEtag });
    return etag === undefined ? undefined : this.#layout.generation({ etag, metadata });
  }

  // -------------------------------------------------------------------------------------------
  // Attributes: v3 in zarr.json beside the metadata, v2 in .zattrs.

  override async readAttrs(owner: AttrsOwner): Promise<AttrsVersion> {
    if ('dataset' in owner) {
      const current = await this.currentArray(owner.dataset);
      return { attrs: current.attrs, generation: current.attrsGeneration };
    }
    await this.requireGroup(owner.group);
    const key = keyOf(owner.group, this.files.attrs);
    const got = await this.access.getObject(key);
    if (!got) return { attrs: {}, generation: null };
    try {
      const doc = JSON.parse(text(got.bytes)) as Record<string, unknown>;
      return { attrs: splitAttrs(this.#format === 3 ? doc.attributes : doc).attrs, generation: got.etag ?? '' };
    } catch (error) {
      throw new CorruptChunkError(`attributes ${this.locate(key)} cannot be read: ${(error as Error).message}`, this.locate(key), { cause: error });
    }
  }

  override async writeAttrsIf(owner: AttrsOwner, attrs: Attrs, expected: Generation | null): Promise<Generation | undefined> {
    if ('dataset' in owner) {
      const current = await this.currentArray(owner.dataset);
      if (current.attrsGeneration !== expected) return undefined;
      const key = keyOf(owner.dataset.name, this.files.attrs);
      const doc = encodeArray(this.#format, current.meta, attrs)[this.files.attrs];
      // v3: the metadata object itself, so it keeps its uid in its user metadata.
      const metadata = this.#format === 3 ? { [UID_METADATA]: current.meta.uid } : undefined;
      return this.access.put(key, body(doc), { contentType: JSON_TYPE, ...(metadata ? { metadata } : {}), ...(expected === null ? { ifAbsent: true } : { ifMatch: expected }) });
    }
    await this.requireGroup(owner.group);
    return this.putGroup(owner.group, attrs, expected);
  }

  // -------------------------------------------------------------------------------------------
  // Chunks: the object store's, under zarr's keys; a sharded array's shards decoded here.

  /** A shard's stored object, decoded into the chunk's raw bytes; undefined when absent or another array's. */
  private async readShard(meta: DatasetMeta, index: ChunkIndex): Promise<{ bytes: Uint8Array | undefined; generation: Generation | null }> {
    const key = this.chunkKey(meta, index);
    const got = await this.access.getObject(key);
    if (!got) return { bytes: undefined, generation: null };
    if (!this.ours(meta, got.metadata)) return { bytes: undefined, generation: got.etag ?? '' };
    try {
      return { bytes: await decodeShard(shardingOf(meta)!, meta, got.bytes, this.locate(key)), generation: got.etag ?? '' };
    } catch (error) {
      throw new CorruptChunkError(`cannot read shard ${this.locate(key)}: ${(error as Error).message}`, this.locate(key), { cause: error });
    }
  }

  override async readChunk(meta: DatasetMeta, index: ChunkIndex, into?: Uint8Array): Promise<Uint8Array | undefined> {
    return shardingOf(meta) ? (await this.readShard(meta, index)).bytes : super.readChunk(meta, index, into);
  }

  override async readChunkVersion(meta: DatasetMeta, index: ChunkIndex, into?: Uint8Array): Promise<ChunkVersion> {
    return shardingOf(meta) ? this.readShard(meta, index) : super.readChunkVersion(meta, index, into);
  }

  override async readChunkRange(meta: DatasetMeta, index: ChunkIndex, start: number, end: number): Promise<Uint8Array | undefined> {
    return shardingOf(meta) ? (await this.readShard(meta, index)).bytes?.subarray(start, end) : super.readChunkRange(meta, index, start, end);
  }

  override async writeChunk(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[]): Promise<Generation> {
    refuseSharded(meta, 'written');
    return super.writeChunk(meta, index, parts);
  }

  override async writeChunkIf(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[], expected: Generation | null): Promise<Generation | undefined> {
    refuseSharded(meta, 'written');
    return super.writeChunkIf(meta, index, parts, expected);
  }

  override chunkKey(meta: DatasetMeta, index: ChunkIndex): string {
    super.chunkKey(meta, index); // checks the index against the grid
    return `${meta.name}/${chunkKey(this.#format, index)}`;
  }

  /** The chunk index a key under the array's prefix names, if it names one of `ndim` axes. */
  private indexOf(rest: string, ndim: number): ChunkIndex | undefined {
    if (this.#format === 2) {
      if (!CHUNK_V2.test(rest)) return undefined;
      const index = ndim === 0 ? [] : rest.split('.').map(Number);
      return index.length === ndim ? index : undefined;
    }
    if (!CHUNK_V3.test(rest)) return undefined;
    const index = rest.split('/').slice(1).map(Number);
    return index.length === ndim ? index : undefined;
  }

  override async listChunks(meta: DatasetMeta): Promise<ChunkIndex[]> {
    const prefix = `${checkDatasetName(meta.name)}/`;
    const out: ChunkIndex[] = [];
    for (const key of await this.access.listKeys(prefix)) {
      const index = this.indexOf(key.slice(prefix.length), meta.shape.length);
      if (index) out.push(index);
    }
    return out;
  }

  override async storedBytes(meta: DatasetMeta): Promise<number> {
    const prefix = `${checkDatasetName(meta.name)}/`;
    let bytes = 0;
    for await (const page of this.access.listPages(prefix)) {
      for (const o of page.objects) if (this.indexOf(o.key.slice(prefix.length), meta.shape.length)) bytes += o.size;
    }
    return bytes;
  }
}
