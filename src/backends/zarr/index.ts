/**
 * The `zarr` backend: a connection is the zarr group `<directory>/<name>` (zarr v3 by default,
 * v2 with `format: 2`), or with `storage: 's3'` the group at the root of bucket `<name>`
 * (objects.ts), its datasets are zarr arrays and its groups zarr groups, so zarr-python,
 * zarrita.js, TensorStore, napari and neuroglancer open what dosna writes, and dosna's engines
 * run over arrays they wrote (format.ts has the layout).
 *
 * Files are replaced as the hdf5 backend replaces chunk files (`hdf5/locks.ts`): a new file
 * beside the old, renamed over it or swapped with it (option `commit`, hdf5/commit-mode.ts)
 * under the file's lock after comparing its generation (inode and a unique modification time),
 * so partial writes are conditional commits and a crash leaves every chunk old or new. Arrays
 * and groups are built under a hidden name and renamed into place; a deleted one is renamed
 * aside first, so it vanishes at once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Attrs, AttrsVersion } from '../../attrs.js';
import { encodeChunk } from '../../codecs/index.js';
import { bytesPerElement } from '../../dtypes.js';
import { ConnectionError, CorruptChunkError, DatasetExistsError, DatasetNotFoundError, DosnaError, DTypeError, GroupExistsError, GroupNotFoundError, OptionError } from '../../errors.js';
import { checkName } from '../../names.js';
import { checkOptions } from '../../options.js';
import { baseName, checkPath, parentOf, RESERVED_PREFIX, ROOT, segmentsOf } from '../../paths.js';
import type { AttrsOwner, Backend, ChunkIndex, ChunkVersion, CopyOut, DatasetMeta, Generation, MetaVersion, NodeEntry, NodeKind, Store } from '../../store.js';
import { errorCode, readPartOfSize, readWholeFile, stampFile, statGeneration, statGenerations, writeFileParts } from '../hdf5/files.js';
import { asideName, commitFile, isScratchName, placeFolder, removeFile, sweepFolder, tmpName, writeAndCommit, type CommitMode } from '../hdf5/locks.js';
import { resolveCommitMode, type CommitOption } from '../hdf5/commit-mode.js';
import { parseFolderOptions } from './options.js';
import { makeStagingFolder } from '../hdf5/folder-placement.js';
import { decodeArray, encodeArray, encodeGroup, FILES, refuseSharded, shardingOf, splitAttrs, type ZarrFormat } from './format.js';
import { ArrayPaths, chunkBytes, listChunkFiles, readChunkFile } from './chunk-files.js';
import { ZarrObjectStore } from './objects.js';
import { s3Settings, S3_OPTIONS } from '../s3.js';
import { fillSegments } from '../../segments.js';


class ZarrStore implements Store {
  readonly capabilities = {};
  readonly root: string;
  #connected = false;
  /** The inode of each dataset incarnation's folder (by name and uid), to refuse writing into a folder that replaced it. */
  #folders = new Map<string, bigint>();
  /** Chunk folders already swept of what crashed writers left. */
  #swept = new Set<string>();
  /** The paths of the arrays' chunk and metadata files. */
  readonly #paths: ArrayPaths;

  /** How chunk files replace the old ones, as asked and as resolved at connect (hdf5/commit-mode.ts). */
  readonly #commitOption: CommitOption;
  #commitMode: CommitMode = 'rename';

  constructor(readonly name: string, directory: string, private readonly create: boolean, readonly format: ZarrFormat, commitOption: CommitOption) {
    this.#commitOption = commitOption;
    this.root = path.resolve(directory, name);
    this.#paths = new ArrayPaths(format, (dataset) => this.dir(dataset), FILES[format].array);
  }

  async connect(): Promise<void> {
    if (this.create) {
      try {
        await fs.promises.mkdir(this.root, { recursive: true });
      } catch (error) {
        throw new ConnectionError(`cannot create zarr connection folder ${this.root}: ${(error as Error).message}`, { cause: error });
      }
    }
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(this.root);
    } catch (error) {
      const why = errorCode(error) === 'ENOENT' ? 'does not exist (pass create: true to make it)' : `cannot be read (${errorCode(error) ?? (error as Error).message})`;
      throw new ConnectionError(`zarr connection folder ${this.root} ${why}`, { cause: error });
    }
    if (!stat.isDirectory()) throw new ConnectionError(`zarr connection path ${this.root} is not a folder`);
    const kind = this.kindAt(this.root);
    if (kind === 'dataset') throw new ConnectionError(`zarr connection folder ${this.root} is an array, not a group`);
    // The connection is a group: a folder that is not one yet (a new one) becomes one.
    if (kind === undefined) {
      if (this.otherFormat(this.root)) throw new ConnectionError(`zarr connection folder ${this.root} holds zarr format ${this.format === 3 ? 2 : 3} metadata; connect with format: ${this.format === 3 ? 2 : 3}`);
      await this.writeFiles(this.root, encodeGroup(this.format, {}));
    }
    this.#commitMode = resolveCommitMode(this.#commitOption, this.root);
    this.#connected = true;
  }

  async disconnect(): Promise<void> {
    this.#connected = false;
  }

  private check(): void {
    if (!this.#connected) throw new ConnectionError(`zarr connection ${JSON.stringify(this.name)} (${this.root}) is not connected; call connect() first`);
  }

  private dir(nodePath: string, what = 'dataset'): string {
    this.check();
    return path.join(this.root, ...segmentsOf(checkPath(nodePath, what, true)));
  }

  private get files() {
    return FILES[this.format];
  }

  /** The metadata file of the array at `dir`. */
  private arrayFile(dir: string): string {
    return path.join(dir, this.files.array);
  }

  private otherFormat(dir: string): boolean {
    return this.format === 3 ? fs.existsSync(path.join(dir, '.zarray')) || fs.existsSync(path.join(dir, '.zgroup')) : fs.existsSync(path.join(dir, 'zarr.json'));
  }

  /** What the folder `dir` is in this format. */
  private kindAt(dir: string): NodeKind | undefined {
    if (this.format === 2) {
      if (fs.existsSync(path.join(dir, '.zarray'))) return 'dataset';
      return fs.existsSync(path.join(dir, '.zgroup')) ? 'group' : undefined;
    }
    let text: string;
    try {
      text = fs.readFileSync(path.join(dir, 'zarr.json'), 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return undefined;
      throw error;
    }
    try {
      const type = (JSON.parse(text) as { node_type?: unknown }).node_type;
      return type === 'array' ? 'dataset' : type === 'group' ? 'group' : undefined;
    } catch (error) {
      throw new CorruptChunkError(`${path.join(dir, 'zarr.json')} is not JSON: ${(error as Error).message}`, path.join(dir, 'zarr.json'), { cause: error });
    }
  }

  private notFound(name: string, cause?: unknown): DatasetNotFoundError {
    return new DatasetNotFoundError(`dataset ${JSON.stringify(name)} not found in ${this.root}`, cause === undefined ? undefined : { cause });
  }

  /** Writes `files` (name -> text) into `dir` (new files: nothing else can see them yet). */
  private async writeFiles(dir: string, files: Record<string, string>): Promise<Generation> {
    let generation: Generation | undefined;
    for (const [file, text] of Object.entries(files)) {
      await fs.promises.writeFile(path.join(dir, file), text);
      const g = await stampFile(path.join(dir, file));
      generation ??= g;
    }
    return generation!;
  }

  /** Replaces `file` with `text` if it is still at generation `expected` (`null`: absent); the new generation, or undefined. */
  private async commitText(file: string, text: string, expected: Generation | null): Promise<Generation | undefined> {
    const tmp = tmpName(file);
    let generation: Generation;
    try {
      generation = await writeFileParts(tmp, [Buffer.from(text)]);
    } catch (error) {
      fs.rmSync(tmp, { force: true });
      throw error;
    }
    return (await commitFile(file, tmp, () => statGeneration(file) === expected)) ? generation : undefined;
  }

  /** Makes `dir` (a new array or group) from `files`, built under a hidden name and renamed into place. */
  private async makeNode(nodePath: string, dir: string, files: Record<string, string>, exists: () => Error): Promise<Generation> {
    const parent = path.dirname(dir);
    const staging = await makeStagingFolder(parent, baseName(nodePath));
    try {
      const generation = await this.writeFiles(staging, files);
      await placeFolder(staging, dir, () => {
        if (this.kindAt(dir) !== undefined) throw exists();
      });
      return generation;
    } finally {
      await fs.promises.rm(staging, { recursive: true, force: true });
    }
  }

  /** Removes `dir` at once (renamed aside first). */
  private async removeNode(nodePath: string, dir: string, missing: () => Error): Promise<void> {
    const aside = asideName(path.dirname(dir), baseName(nodePath), 'deleted');
    try {
      await fs.promises.rename(dir, aside);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') throw missing();
      throw error;
    }
    await fs.promises.rm(aside, { recursive: true, force: true });
  }

  // -------------------------------------------------------------------------------------------
  // Groups

  async nodeKind(nodePath: string): Promise<NodeKind | undefined> {
    return nodePath === ROOT ? 'group' : this.kindAt(this.dir(nodePath));
  }

  private requireGroup(groupPath: string): string {
    const dir = this.dir(groupPath, 'group');
    if (groupPath !== ROOT && this.kindAt(dir) !== 'group') throw new GroupNotFoundError(`group ${JSON.stringify(groupPath)} not found in ${this.root}`);
    return dir;
  }

  async createGroup(groupPath: string): Promise<boolean> {
    const dir = this.dir(groupPath, 'group');
    const existing = this.kindAt(dir);
    if (existing === 'group') return false;
    if (existing === 'dataset') throw new DatasetExistsError(`a dataset named ${JSON.stringify(groupPath)} exists in ${this.root}`);
    this.requireGroup(parentOf(groupPath));
    try {
      await this.makeNode(groupPath, dir, encodeGroup(this.format, {}), () => new GroupExistsError(groupPath));
      return true;
    } catch (error) {
      if (!(error instanceof GroupExistsError)) throw error;
      if (this.kindAt(dir) === 'dataset') throw new DatasetExistsError(`a dataset named ${JSON.stringify(groupPath)} exists in ${this.root}`);
      return false;
    }
  }

  async deleteGroup(groupPath: string): Promise<void> {
    if (groupPath === ROOT) throw new DosnaError('the root group cannot be deleted');
    const dir = this.requireGroup(groupPath);
    if ((await this.list(groupPath)).length > 0) throw new DosnaError(`group ${JSON.stringify(groupPath)} is not empty`);
    await this.removeNode(groupPath, dir, () => new GroupNotFoundError(`group ${JSON.stringify(groupPath)} not found in ${this.root}`));
  }

  async list(groupPath: string): Promise<NodeEntry[]> {
    const dir = this.requireGroup(groupPath);
    const out: NodeEntry[] = [];
    for (const e of await fs.promises.readdir(dir, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name.startsWith('.') || e.name.startsWith(RESERVED_PREFIX) || isScratchName(e.name)) continue;
      try {
        checkPath(groupPath === ROOT ? e.name : `${groupPath}/${e.name}`);
      } catch {
        continue; // a folder no dataset or group of dosna's could be
      }
      const kind = this.kindAt(path.join(dir, e.name));
      if (kind) out.push({ name: e.name, kind });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async listDatasets(): Promise<string[]> {
    return (await this.list(ROOT)).filter((e) => e.kind === 'dataset').map((e) => e.name);
  }

  // -------------------------------------------------------------------------------------------
  // Arrays

  /** An array's metadata, attributes and the generation of its metadata file, read consistently; undefined when absent. */
  private async readArray(name: string): Promise<{ meta: DatasetMeta; attrs: Attrs; generation: Generation; attrsGeneration: Generation | null } | undefined> {
    const dir = this.dir(name);
    const file = this.arrayFile(dir);
    const read = await readWholeFile(file);
    if (!read) return undefined;
    const text = new TextDecoder().decode(read.bytes);
    // v2 keeps the attributes apart: their text and generation come from one read of .zattrs.
    const attrsRead = this.format === 2 ? await readWholeFile(path.join(dir, '.zattrs')) : undefined;
    const attrsText = attrsRead && new TextDecoder().decode(attrsRead.bytes);
    try {
      return { ...decodeArray(this.format, name, text, attrsText, file), generation: read.generation, attrsGeneration: this.format === 2 ? attrsRead?.generation ?? null : read.generation };
    } catch (error) {
      // Metadata dosna understands but cannot take (a codec, a dtype) is said as such, not as damage.
      if (error instanceof OptionError || error instanceof DTypeError) throw error;
      throw new CorruptChunkError(`zarr array metadata ${file} cannot be read: ${(error as Error).message}`, file, { cause: error });
    }
  }

  /** The array of this incarnation (its uid), or `DatasetNotFoundError`. */
  private async currentArray(meta: DatasetMeta): Promise<{ meta: DatasetMeta; attrs: Attrs; generation: Generation; attrsGeneration: Generation | null }> {
    const found = await this.readArray(meta.name);
    if (!found || (meta.uid && found.meta.uid !== meta.uid)) throw this.notFound(meta.name);
    return found;
  }

  async readMeta(name: string): Promise<MetaVersion | undefined> {
    const found = await this.readArray(name);
    return found && { meta: found.meta, generation: found.generation };
  }

  async metaGeneration(name: string): Promise<Generation | null> {
    return this.metaGenerationNow(name);
  }

  metaGenerationNow(name: string): Generation | null {
    this.check();
    return statGeneration(this.#paths.metadata(name));
  }

  async createMeta(meta: DatasetMeta): Promise<Generation> {
    if (meta.options && Object.keys(meta.options).length > 0) throw new OptionError(`the zarr backend takes no dataset options, got ${Object.keys(meta.options).join(', ')}`);
    const dir = this.dir(meta.name);
    const exists = () => new DatasetExistsError(`dataset ${JSON.stringify(meta.name)} already exists in ${this.root}`);
    const kind = this.kindAt(dir);
    if (kind === 'dataset') throw exists();
    if (kind === 'group') throw new GroupExistsError(`a group named ${JSON.stringify(meta.name)} exists in ${this.root}`);
    this.requireGroup(parentOf(meta.name));
    return this.makeNode(meta.name, dir, encodeArray(this.format, meta, {}), () => (this.kindAt(dir) === 'group' ? new GroupExistsError(`a group named ${JSON.stringify(meta.name)} exists in ${this.root}`) : exists()));
  }

  async deleteDataset(name: string): Promise<void> {
    const dir = this.dir(name);
    if (this.kindAt(dir) !== 'dataset') throw this.notFound(name);
    await this.removeNode(name, dir, () => this.notFound(name));
  }

  async writeMetaIf(meta: DatasetMeta, expected: Generation): Promise<Generation | undefined> {
    const current = await this.currentArray(meta);
    refuseSharded(current.meta, 'resized');
    if (current.generation !== expected) return undefined;
    const file = this.arrayFile(this.dir(meta.name));
    return this.commitText(file, encodeArray(this.format, meta, current.attrs)[this.files.array], expected);
  }

  // -------------------------------------------------------------------------------------------
  // Attributes: v3 in zarr.json beside the metadata, v2 in .zattrs.

  async readAttrs(owner: AttrsOwner): Promise<AttrsVersion> {
    if ('dataset' in owner) {
      const current = await this.currentArray(owner.dataset);
      return { attrs: current.attrs, generation: current.attrsGeneration };
    }
    const dir = this.requireGroup(owner.group);
    const read = await readWholeFile(path.join(dir, this.files.attrs));
    if (!read) return { attrs: {}, generation: null };
    const doc = JSON.parse(new TextDecoder().decode(read.bytes)) as Record<string, unknown>;
    return { attrs: splitAttrs(this.format === 3 ? doc.attributes : doc).attrs, generation: read.generation };
  }

  async writeAttrsIf(owner: AttrsOwner, attrs: Attrs, expected: Generation | null): Promise<Generation | undefined> {
    if ('dataset' in owner) {
      const current = await this.currentArray(owner.dataset);
      const dir = this.dir(owner.dataset.name);
      if (this.format === 2) return this.commitText(path.join(dir, '.zattrs'), encodeArray(2, current.meta, attrs)['.zattrs'], expected);
      // zarr.json holds the metadata too: rewritten from the version the generation names.
      if (current.generation !== expected) return undefined;
      return this.commitText(path.join(dir, 'zarr.json'), encodeArray(3, current.meta, attrs)['zarr.json'], expected);
    }
    const dir = this.requireGroup(owner.group);
    return this.commitText(path.join(dir, this.files.attrs), encodeGroup(this.format, attrs)[this.files.attrs], expected);
  }

  // -------------------------------------------------------------------------------------------
  // Chunks


  private chunkPath(meta: DatasetMeta, index: ChunkIndex): string {
    this.check();
    return this.#paths.chunk(meta, index);
  }

  /** The stored chunk's raw bytes and generation. */
  private read(meta: DatasetMeta, index: ChunkIndex): Promise<ChunkVersion> {
    return readChunkFile(meta, index, this.chunkPath(meta, index));
  }

  async readChunk(meta: DatasetMeta, index: ChunkIndex): Promise<Uint8Array | undefined> {
    return (await this.read(meta, index)).bytes;
  }

  readChunkVersion(meta: DatasetMeta, index: ChunkIndex): Promise<ChunkVersion> {
    return this.read(meta, index);
  }

  /**
   * Bytes of a chunk from `start` on straight into `segments`: for an uncompressed chunk, a
   * read of just those bytes of its file (its length checked on the way); otherwise the chunk
   * decoded and copied.
   */
  async readChunkInto(meta: DatasetMeta, index: ChunkIndex, start: number, segments: readonly Uint8Array[], copyOut?: CopyOut): Promise<boolean | 'copied'> {
    if (!shardingOf(meta) && !meta.compression) {
      // A path through a file (ENOTDIR) is 'missing' there already.
      const status = await readPartOfSize(this.chunkPath(meta, index), chunkBytes(meta), start, segments, copyOut);
      if (status === 'copied') return status;
      if (status !== 'foreign') return status === 'read';
      // A file of another length: the whole read below says what it holds.
    }
    const bytes = await this.readChunk(meta, index);
    if (!bytes) return false;
    fillSegments(segments, bytes, start);
    return true;
  }

  async chunkGeneration(meta: DatasetMeta, index: ChunkIndex): Promise<Generation | null> {
    return statGeneration(this.chunkPath(meta, index));
  }

  async chunkGenerations(meta: DatasetMeta, indices: readonly ChunkIndex[]): Promise<(Generation | null)[]> {
    return this.chunkGenerationsNow(meta, indices);
  }

  chunkGenerationsNow(meta: DatasetMeta, indices: readonly ChunkIndex[]): (Generation | null)[] {
    return statGenerations(indices.map((index) => this.chunkPath(meta, index)));
  }

  async hasChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    return fs.existsSync(this.chunkPath(meta, index));
  }

  /**
   * The inode of this incarnation's folder, found at its first write (as the hdf5 backend does),
   * so a commit can refuse a folder that replaced it; `DatasetNotFoundError` when it is gone.
   */
  private folderOf(meta: DatasetMeta): bigint {
    const key = `${meta.name}\u0000${meta.uid}`;
    let ino = this.#folders.get(key);
    if (ino === undefined) {
      try {
        ino = fs.statSync(this.dir(meta.name), { bigint: true }).ino;
      } catch (error) {
        throw this.notFound(meta.name, error);
      }
      this.#folders.set(key, ino);
    }
    return ino;
  }

  /** Sweeps what crashed writers left in a chunk folder, once per folder and store. */
  private sweep(folder: string): void {
    if (this.#swept.has(folder)) return;
    this.#swept.add(folder);
    sweepFolder(folder);
  }

  writeChunk(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[]): Promise<Generation> {
    return this.commitChunk(meta, index, parts, undefined) as Promise<Generation>;
  }

  writeChunkIf(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[], expected: Generation | null): Promise<Generation | undefined> {
    return this.commitChunk(meta, index, parts, expected);
  }

  private async commitChunk(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[], expected: Generation | null | undefined): Promise<Generation | undefined> {
    refuseSharded(meta, 'written');
    const file = this.chunkPath(meta, index);
    const length = parts.reduce((n, p) => n + p.byteLength, 0);
    if (length !== chunkBytes(meta)) throw new DosnaError(`chunk ${JSON.stringify(index)} of ${meta.name} must be ${chunkBytes(meta)} bytes, got ${length}`);
    const folder = this.folderOf(meta);
    const body = meta.compression ? [await encodeChunk(meta.compression, bytesPerElement(meta.dtype), parts, 'numcodecs')] : parts;
    // v3 keys are nested folders (c/i/j/...): made below the array's folder, never the folder itself.
    if (this.format === 3) await fs.promises.mkdir(path.dirname(file), { recursive: true });
    this.sweep(path.dirname(file));
    try {
      const outcome = await writeAndCommit(file, body, { folder: this.dir(meta.name), folderIno: folder, expected }, this.#commitMode);
      if (outcome === 'folder-changed') throw this.notFound(meta.name);
      return outcome === 'conflict' ? undefined : outcome;
    } catch (error) {
      if (error instanceof DosnaError) throw error;
      if (this.kindAt(this.dir(meta.name)) !== 'dataset') throw this.notFound(meta.name, error);
      throw new DosnaError(`cannot write chunk ${JSON.stringify(index)} of dataset ${JSON.stringify(meta.name)} to ${file}: ${(error as Error).message}`, { cause: error });
    }
  }

  async deleteChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    const file = this.chunkPath(meta, index);
    if (!fs.existsSync(path.dirname(file))) return false;
    return removeFile(file);
  }

  async listChunks(meta: DatasetMeta): Promise<ChunkIndex[]> {
    const dir = this.dir(meta.name);
    if (this.kindAt(dir) !== 'dataset') throw this.notFound(meta.name);
    return listChunkFiles(meta, dir, this.format);
  }

  async storedBytes(meta: DatasetMeta): Promise<number> {
    let bytes = 0;
    for (const index of await this.listChunks(meta)) {
      try {
        bytes += (await fs.promises.stat(this.chunkPath(meta, index))).size;
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw error;
      }
    }
    return bytes;
  }
}

export const backend: Backend = {
  name: 'zarr',
  open(name, options) {
    const storage = options.storage ?? 'folder';
    if (storage !== 'folder' && storage !== 's3') throw new OptionError(`zarr option storage must be 'folder' or 's3', got ${JSON.stringify(storage)}`);
    const format = options.format ?? 3;
    if (format !== 2 && format !== 3) throw new OptionError(`zarr option format must be 2 or 3, got ${JSON.stringify(format)}`);
    if (storage === 's3') {
      // The connection is a bucket, as for the s3 backend, with that backend's options.
      const { storage: _storage, format: _format, ...s3 } = options;
      checkOptions('the zarr backend (storage s3)', s3, [...S3_OPTIONS]);
      return new ZarrObjectStore(s3Settings(name, s3, 'zarr'), format);
    }
    const { directory, create, commit } = parseFolderOptions(options);
    checkName(name, 'connection');
    return new ZarrStore(name, directory, create, format, commit);
  },
};
