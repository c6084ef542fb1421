/**
 * The `hdf5` backend: DosNa's folder layout of HDF5 files, read and written through h5wasm
 * (the HDF5 C library compiled to WebAssembly) and, for uncompressed chunks, plain file calls
 * on byte templates HDF5 itself laid out; so folders move between Python DosNa, h5py and this
 * library.
 *
 * ```text
 * <directory>/<connection>/                 the connection: a folder
 *   <dataset>/dataset.h5                    root attributes shape, dtype, fillvalue, chunk_grid, chunk_size (+ dosna_uid),
 *                                           and the dataset's own attributes
 *   <dataset>/chunk_<i>_<j>_<k>.h5          one HDF5 dataset /data of the full chunk shape
 *   <group>/.dosna-group.h5, <group>/...    a group (see nodes.ts), holding datasets and groups laid out the same way
 * ```
 *
 * Every file is written beside its final name (with no name through the native module, else
 * `<file>.tmp-...`) and renamed over it, or for chunks swapped with it (commit-mode.ts), so
 * readers never see a torn file. Chunk commits take the chunk's lock file (locks.ts) for the
 * compare-and-replace, so conditional writes are atomic between processes and hosts. A new
 * dataset folder is built under a hidden name and renamed into place, and a deleted one is
 * renamed aside before it is removed: a dataset appears and disappears whole.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bytesPerElement } from '../../dtypes.js';
import { ConnectionError, DatasetExistsError, DatasetNotFoundError, DosnaError, GroupExistsError } from '../../errors.js';
import { checkName } from '../../names.js';
import { baseName, PathsByName, RESERVED_PREFIX } from '../../paths.js';
import type { Attrs, AttrsVersion } from '../../attrs.js';
import type { AttrsOwner, Backend, ChunkIndex, ChunkReadRequest, ChunkVersion, CopyOut, DatasetMeta, Generation, MetaVersion, NodeEntry, NodeKind, Store } from '../../store.js';
import { encodeChunk } from '../../codecs/index.js';
import { readChunkFile, readChunkFileInto, readChunkFileVersion, READ_ATTEMPTS, type ChunkFile } from './chunk-reads.js';
import { datasetInfo, type DatasetInfo } from './dataset-info.js';
import { errorCode, forgetOpenFiles, readsTemplatedParts, readTemplatedParts, stampFile, statGeneration, statGenerations } from './files.js';
import { hdf5Reason, loadH5, writeThroughHdf5 } from './h5lib.js';
import { asideName, isAbandoned, isScratchName, placeFolder, removeFile, sweepFolder, writeAndCommit, type CommitMode } from './locks.js';
import { makeStagingFolder } from './folder-placement.js';
import { Hdf5Nodes } from './nodes.js';
import { parseOptions } from './options.js';
import { checkDatasetOptions, chunkFileName, CHUNK_RE, METADATA_FILE, readMetaFile, writeMetaFile } from './metadata.js';
import { makeTemplate } from './template.js';
import { headerFor } from './pipeline.js';
import { resolveCommitMode, type CommitOption } from './commit-mode.js';

export { METADATA_FILE } from './metadata.js';
export { MAX_CHUNK_BYTES } from './h5lib.js';


class Hdf5Store implements Store {
  readonly capabilities = {};
  readonly vectoredWrites: boolean;
  readonly root: string;
  readonly #create: boolean;
  readonly #fastPath: boolean;
  /** How chunk files replace the old ones, as asked (commit-mode.ts). */
  readonly #commitOption: CommitOption;
  /** And as resolved for the connection's folder at connect (locks.ts's CommitMode). */
  #commitMode: CommitMode = 'rename';
  #connected = false;
  /** Per-dataset write settings, by the meta object they were made for. */
  #info = new WeakMap<DatasetMeta, DatasetInfo>();
  /** Each dataset's metadata file path, by dataset name (stat'ed at every operation). */
  readonly #metadataFiles = new PathsByName((name) => path.join(this.datasetDir(name), METADATA_FILE));
  /** Dataset folders already swept of what crashed writers left (once per store). */
  #swept = new Set<string>();
  #nodes: Hdf5Nodes | undefined;
  /** The inode of each dataset incarnation's folder (by uid), to refuse writing into a folder that replaced it. */
  #folders = new Map<string, bigint>();

  constructor(readonly name: string, directory: string, create: boolean, fastPath: boolean, commitOption: CommitOption) {
    this.root = path.resolve(directory, name);
    this.#create = create;
    this.#fastPath = fastPath;
    this.#commitOption = commitOption;
    this.vectoredWrites = fastPath;
  }

  async connect(): Promise<void> {
    if (this.#create) {
      try {
        await fs.promises.mkdir(this.root, { recursive: true });
      } catch (error) {
        throw new ConnectionError(`cannot create hdf5 connection folder ${this.root}: ${(error as Error).message}`, { cause: error });
      }
    }
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(this.root);
      await fs.promises.access(this.root, fs.constants.R_OK | fs.constants.X_OK);
    } catch (error) {
      const code = errorCode(error);
      const why = code === 'ENOENT' ? 'does not exist (pass create: true to make it)' : `cannot be read (${code ?? (error as Error).message})`;
      throw new ConnectionError(`hdf5 connection folder ${this.root} ${why}`, { cause: error });
    }
    if (!stat.isDirectory()) throw new ConnectionError(`hdf5 connection path ${this.root} is not a folder`);
    try {
      await loadH5();
    } catch (error) {
      throw new ConnectionError(`cannot load h5wasm for the hdf5 backend: ${(error as Error).message}`, { cause: error });
    }
    this.#commitMode = resolveCommitMode(this.#commitOption, this.root);
    this.#connected = true;
  }

  async disconnect(): Promise<void> {
    this.#connected = false;
    forgetOpenFiles(this.root, true);
  }

  private check(): void {
    if (!this.#connected) throw new ConnectionError(`hdf5 connection ${JSON.stringify(this.name)} (${this.root}) is not connected; call connect() first`);
  }

  private datasetDir(name: string): string {
    return this.nodes.dir(name);
  }

  /** Groups, attributes and metadata updates (nodes.ts). */
  private get nodes(): Hdf5Nodes {
    this.check();
    return (this.#nodes ??= new Hdf5Nodes(this.root));
  }

  async nodeKind(nodePath: string): Promise<NodeKind | undefined> {
    return this.nodes.kind(nodePath);
  }

  createGroup(groupPath: string): Promise<boolean> {
    return this.nodes.createGroup(groupPath);
  }

  deleteGroup(groupPath: string): Promise<void> {
    return this.nodes.deleteGroup(groupPath);
  }

  list(groupPath: string): Promise<NodeEntry[]> {
    return this.nodes.list(groupPath);
  }

  readAttrs(owner: AttrsOwner): Promise<AttrsVersion> {
    return this.nodes.readAttrs(owner);
  }

  writeAttrsIf(owner: AttrsOwner, attrs: Attrs, expected: Generation | null): Promise<Generation | undefined> {
    return this.nodes.writeAttrsIf(owner, attrs, expected);
  }

  writeMetaIf(meta: DatasetMeta, expected: Generation): Promise<Generation | undefined> {
    return this.nodes.writeMetaIf(meta, expected);
  }

  private notFound(name: string, cause?: unknown): DatasetNotFoundError {
    return new DatasetNotFoundError(`dataset ${JSON.stringify(name)} not found in ${this.root}`, cause === undefined ? undefined : { cause });
  }

  private info(meta: DatasetMeta): DatasetInfo {
    let info = this.#info.get(meta);
    if (!info) {
      info = datasetInfo(meta, this.datasetDir(meta.name));
      this.#info.set(meta, info);
    }
    return info;
  }

  private chunkPath(meta: DatasetMeta, index: ChunkIndex): string {
    const info = this.info(meta);
    if (index.length !== meta.shape.length || !index.every((i) => Number.isSafeInteger(i) && i >= 0)) {
      throw new DosnaError(`chunk index ${JSON.stringify(index)} is not valid for dataset ${JSON.stringify(meta.name)} of ${meta.shape.length} axes`);
    }
    return info.dirPrefix + chunkFileName(index);
  }

  // -------------------------------------------------------------------------------------------
  // Datasets

  async listDatasets(): Promise<string[]> {
    this.check();
    const entries = await fs.promises.readdir(this.root, { withFileTypes: true });
    const names: string[] = [];
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith(RESERVED_PREFIX)) continue;
      if (isAbandoned(e.name, () => fs.statSync(path.join(this.root, e.name)))) {
        // A dataset folder whose creation or deletion was cut short by a crash.
        await fs.promises.rm(path.join(this.root, e.name), { recursive: true, force: true }).catch(() => {});
        continue;
      }
      try {
        checkName(e.name);
      } catch {
        continue;
      }
      if (isScratchName(e.name)) continue; // a dataset being created or deleted by a live process
      if (fs.existsSync(path.join(this.root, e.name, METADATA_FILE))) names.push(e.name);
    }
    return names.sort();
  }

  async metaGeneration(name: string): Promise<Generation | null> {
    return this.metaGenerationNow(name);
  }

  metaGenerationNow(name: string): Generation | null {
    this.check();
    return statGeneration(this.#metadataFiles.get(name));
  }

  async readMeta(name: string): Promise<MetaVersion | undefined> {
    this.check();
    const file = this.#metadataFiles.get(name);
    // HDF5 opens the file by name: the generation before and after must agree.
    for (let attempt = 1; ; attempt++) {
      const before = statGeneration(file);
      if (before === null) return undefined;
      const meta = readMetaFile(file, name);
      if (!meta) return undefined;
      if (statGeneration(file) === before) return { meta, generation: before };
      if (attempt >= READ_ATTEMPTS) throw new DosnaError(`dataset metadata file ${file} kept changing while it was read`);
    }
  }

  async createMeta(meta: DatasetMeta): Promise<Generation> {
    this.check();
    const dir = this.datasetDir(meta.name);
    checkDatasetOptions(meta.name, meta.options);
    const exists = () => new DatasetExistsError(`dataset ${JSON.stringify(meta.name)} already exists in ${this.root}`);
    if (fs.existsSync(path.join(dir, METADATA_FILE))) throw exists();
    const groupExists = () => new GroupExistsError(`a group named ${JSON.stringify(meta.name)} exists in ${this.root}`);
    if (this.nodes.kind(meta.name) === 'group') throw groupExists();
    // Built under a hidden name and renamed into place: the dataset appears whole, and of two
    // processes creating it, one wins.
    const parent = path.dirname(dir);
    const staging = await makeStagingFolder(parent, baseName(meta.name));
    try {
      const file = path.join(staging, METADATA_FILE);
      try {
        writeMetaFile(file, meta);
      } catch (error) {
        throw new DosnaError(`cannot write dataset metadata file ${file}: ${hdf5Reason(error)}`, { cause: error });
      }
      const generation = await stampFile(file);
      await placeFolder(staging, dir, () => {
        if (fs.existsSync(path.join(dir, METADATA_FILE))) throw exists();
        if (this.nodes.kind(meta.name) === 'group') throw groupExists();
      });
      return generation;
    } finally {
      await fs.promises.rm(staging, { recursive: true, force: true });
    }
  }

  async deleteDataset(name: string): Promise<void> {
    this.check();
    const dir = this.datasetDir(name);
    // Its metadata need not be readable: a dataset is there when its dataset.h5 is.
    if (!fs.existsSync(path.join(dir, METADATA_FILE))) throw this.notFound(name);
    // Move the folder aside first, so the dataset and all its chunks vanish at once.
    const aside = asideName(path.dirname(dir), baseName(name), 'deleted');
    try {
      await fs.promises.rename(dir, aside);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') throw this.notFound(name, error);
      throw error;
    }
    forgetOpenFiles(dir, true); // their space is freed when the last descriptor closes
    await fs.promises.rm(path.join(aside, METADATA_FILE), { force: true });
    await fs.promises.rm(aside, { recursive: true, force: true });
  }

  // -------------------------------------------------------------------------------------------
  // Chunks

  async readChunk(meta: DatasetMeta, index: ChunkIndex, into?: Uint8Array): Promise<Uint8Array | undefined> {
    this.check();
    return readChunkFile(this.chunkFile(meta, index), this.#fastPath, into);
  }

  async readChunkVersion(meta: DatasetMeta, index: ChunkIndex, into?: Uint8Array): Promise<ChunkVersion> {
    this.check();
    return readChunkFileVersion(this.chunkFile(meta, index), this.#fastPath, into);
  }

  async chunkGeneration(meta: DatasetMeta, index: ChunkIndex): Promise<Generation | null> {
    this.check();
    return statGeneration(this.chunkPath(meta, index));
  }

  async chunkGenerations(meta: DatasetMeta, indices: readonly ChunkIndex[]): Promise<(Generation | null)[]> {
    return this.chunkGenerationsNow(meta, indices);
  }

  chunkGenerationsNow(meta: DatasetMeta, indices: readonly ChunkIndex[]): (Generation | null)[] {
    this.check();
    return statGenerations(indices.map((index) => this.chunkPath(meta, index)));
  }

  async readChunkInto(meta: DatasetMeta, index: ChunkIndex, start: number, segments: readonly Uint8Array[], copyOut?: CopyOut): Promise<boolean | 'copied'> {
    this.check();
    return readChunkFileInto(this.chunkFile(meta, index), this.#fastPath, start, segments, copyOut);
  }

  readsChunksInto(meta: DatasetMeta): boolean {
    const info = this.info(meta);
    const template = this.#fastPath && !info.pipeline ? makeTemplate(info) : null;
    return template !== null && readsTemplatedParts(template, info.bytes);
  }

  async readChunksInto(meta: DatasetMeta, requests: readonly ChunkReadRequest[]): Promise<boolean[]> {
    this.check();
    const info = this.info(meta);
    const template = this.#fastPath && !info.pipeline ? makeTemplate(info) : null;
    if (!template) throw new DosnaError(`internal: readChunksInto for dataset ${JSON.stringify(meta.name)}, whose chunk files have no byte template`);
    const statuses = readTemplatedParts(template, info.bytes, requests.map((r) => ({ file: this.chunkPath(meta, r.index), start: r.start, segments: r.segments })));
    const found: boolean[] = [];
    for (let i = 0; i < requests.length; i++) {
      const { index, start, segments } = requests[i];
      // Not our template (h5py wrote it, or it is damaged): read as one chunk, where HDF5 decides.
      found.push(statuses[i] === 'foreign' ? (await readChunkFileInto(this.chunkFile(meta, index), this.#fastPath, start, segments)) !== false : statuses[i] === 'read');
    }
    return found;
  }

  private chunkFile(meta: DatasetMeta, index: ChunkIndex): ChunkFile {
    return { meta, index, file: this.chunkPath(meta, index), info: this.info(meta) };
  }

  async writeChunk(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[]): Promise<Generation> {
    return (await this.commit(meta, index, parts, undefined))!;
  }

  async writeChunkIf(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[], expected: Generation | null): Promise<Generation | undefined> {
    return this.commit(meta, index, parts, expected);
  }

  /**
   * Writes the new chunk file beside the old one, then, holding the chunk's lock, checks the
   * old one's generation (when `expected` is given) and renames the new one over it.
   */
  private async commit(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[], expected: Generation | null | undefined): Promise<Generation | undefined> {
    this.check();
    const file = this.chunkPath(meta, index);
    const info = this.info(meta);
    const length = parts.reduce((n, p) => n + p.byteLength, 0);
    if (length !== info.bytes) {
      throw new DosnaError(`chunk ${JSON.stringify(index)} of ${meta.name} must be ${info.bytes} bytes, got ${length}`);
    }
    const folder = this.folderOf(meta, info);
    const condition = { folder: info.dir, folderIno: folder, expected };
    try {
      const template = this.#fastPath && !info.pipeline ? makeTemplate(info) : null;
      let content: Parameters<typeof writeAndCommit>[1];
      if (info.pipeline) {
        const filtered = await encodeChunk(meta.compression!, bytesPerElement(meta.dtype), parts, 'hdf5');
        content = [headerFor(info.pipeline, filtered.byteLength), filtered];
      } else if (template) {
        content = [template.prefix, ...parts, template.suffix];
      } else {
        // HDF5 itself writes the file, by name.
        content = { write: async (tmp) => { writeThroughHdf5(tmp, info, parts.length === 1 ? parts[0] : Buffer.concat(parts)); return stampFile(tmp); } };
      }
      const outcome = await writeAndCommit(file, content, condition, this.#commitMode);
      // The folder must still be this dataset's (not a new dataset of the same name).
      if (outcome === 'folder-changed') throw this.notFound(meta.name);
      if (outcome === 'conflict') return undefined;
      forgetOpenFiles(file); // the file it replaced, kept open by a read
      return outcome;
    } catch (error) {
      if (error instanceof DatasetNotFoundError) throw error;
      if (!fs.existsSync(path.join(info.dir, METADATA_FILE))) throw this.notFound(meta.name, error);
      if (error instanceof DosnaError) throw error;
      throw new DosnaError(`cannot write chunk ${JSON.stringify(index)} of dataset ${JSON.stringify(meta.name)} to ${file}: ${hdf5Reason(error)}`, { cause: error });
    }
  }

  /**
   * The inode of the dataset's folder, learnt on first use (and the folder swept of what
   * crashed writers left, once per store).
   */
  private folderOf(meta: DatasetMeta, info: DatasetInfo): bigint {
    const key = `${meta.name}\u0000${meta.uid}`;
    let ino = this.#folders.get(key);
    if (ino === undefined) {
      try {
        ino = fs.statSync(info.dir, { bigint: true }).ino;
      } catch (error) {
        throw this.notFound(meta.name, error);
      }
      this.#folders.set(key, ino);
    }
    if (!this.#swept.has(info.dir)) {
      this.#swept.add(info.dir);
      sweepFolder(info.dir);
    }
    return ino;
  }

  async hasChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    this.check();
    return fs.existsSync(this.chunkPath(meta, index));
  }

  async deleteChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    this.check();
    const file = this.chunkPath(meta, index);
    try {
      return await removeFile(file);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') throw this.notFound(meta.name, error); // the folder is gone
      throw error;
    } finally {
      forgetOpenFiles(file);
    }
  }

  async deleteChunks(meta: DatasetMeta, indices: readonly ChunkIndex[]): Promise<void> {
    for (const index of indices) await this.deleteChunk(meta, index);
  }

  async storedBytes(meta: DatasetMeta): Promise<number> {
    const { dir } = this.info(meta);
    const chunks = await this.listChunks(meta);
    let bytes = 0;
    // Stats in batches: thousands of chunk files at once would exhaust file handles on slow disks.
    for (let at = 0; at < chunks.length; at += 64) {
      const sizes = await Promise.all(chunks.slice(at, at + 64).map(async (index) => {
        try {
          return (await fs.promises.stat(path.join(dir, chunkFileName(index)))).size;
        } catch (error) {
          if (errorCode(error) === 'ENOENT') return 0; // deleted since the listing
          throw error;
        }
      }));
      for (const size of sizes) bytes += size;
    }
    return bytes;
  }

  async listChunks(meta: DatasetMeta): Promise<ChunkIndex[]> {
    this.check();
    const { dir } = this.info(meta);
    let names: string[];
    try {
      names = await fs.promises.readdir(dir);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') throw this.notFound(meta.name, error);
      throw error;
    }
    const grid = meta.shape.map((n, a) => Math.ceil(n / meta.chunkSize[a]));
    const out: ChunkIndex[] = [];
    for (const n of names) {
      const m = CHUNK_RE.exec(n);
      if (!m) continue;
      const index = m[1].split('_').map(Number);
      if (index.length !== grid.length || index.some((i, a) => i >= grid[a])) continue;
      out.push(index);
    }
    return out;
  }
}

export const backend: Backend = {
  name: 'hdf5',
  open(name, options) {
    checkName(name, 'connection');
    const { directory, create, fastPath, commit } = parseOptions(options);
    return new Hdf5Store(name, directory, create, fastPath, commit);
  },
};
