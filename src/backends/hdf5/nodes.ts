/**
 * Groups, attributes and metadata updates of the hdf5 backend.
 *
 * ```text
 * <connection>/.dosna-group.h5          the root group's attributes (when it has any)
 * <connection>/<group>/                 a group: a folder holding
 *   .dosna-group.h5                     its marker, an HDF5 file whose root attributes are the group's
 *   <dataset>/dataset.h5, <group>/...   its datasets and groups, laid out as at the top
 * ```
 *
 * A dataset's attributes are root attributes of its `dataset.h5`, beside DosNa's metadata,
 * where h5py finds them. Every change (attributes, a resize) writes a whole new file beside the
 * old one and commits it with `commitFile` only if the file's generation is still the one the
 * change was based on, so concurrent writers of one file retry instead of losing updates.
 * Groups, like datasets, are built under a hidden name and renamed into place.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Attrs, AttrsVersion } from '../../attrs.js';
import { DatasetExistsError, DatasetNotFoundError, DosnaError, GroupNotFoundError } from '../../errors.js';
import { baseName, checkPath, parentOf, RESERVED_PREFIX, ROOT, segmentsOf } from '../../paths.js';
import type { AttrsOwner, DatasetMeta, Generation, NodeEntry, NodeKind } from '../../store.js';
import { errorCode, stampFile, statGeneration } from './files.js';
import { hdf5Reason } from './h5lib.js';
import { asideName, commitFile, isScratchName, tmpName } from './locks.js';
import { makeStagingFolder } from './folder-placement.js';
import { checkDatasetOptions, GROUP_FILE, METADATA_FILE, readDatasetFile, readGroupFile, writeGroupFile, writeMetaFile } from './metadata.js';


/** How many times a read retries when the file changed while HDF5 read it by name. */
const READ_ATTEMPTS = 8;

/** Groups, attributes and metadata updates under one connection folder. */
export class Hdf5Nodes {
  constructor(readonly root: string) {}

  /** The folder of a dataset or group path (the connection folder for the root). */
  dir(nodePath: string, what = 'dataset'): string {
    return path.join(this.root, ...segmentsOf(checkPath(nodePath, what, true)));
  }

  kind(nodePath: string): NodeKind | undefined {
    if (nodePath === ROOT) return 'group';
    const dir = this.dir(nodePath);
    if (fs.existsSync(path.join(dir, METADATA_FILE))) return 'dataset';
    if (fs.existsSync(path.join(dir, GROUP_FILE))) return 'group';
    return undefined;
  }

  private requireGroup(groupPath: string): string {
    const dir = this.dir(groupPath, 'group');
    if (this.kind(groupPath) !== 'group') throw new GroupNotFoundError(`group ${JSON.stringify(groupPath)} not found in ${this.root}`);
    return dir;
  }

  async createGroup(groupPath: string): Promise<boolean> {
    const dir = this.dir(groupPath, 'group');
    const existing = this.kind(groupPath);
    if (existing === 'group') return false;
    if (existing === 'dataset') throw new DatasetExistsError(`a dataset named ${JSON.stringify(groupPath)} exists in ${this.root}`);
    const parent = this.requireGroup(parentOf(groupPath));
    // Built under a hidden name and renamed into place, as datasets are: of two processes
    // making it, one wins and the other finds the group.
    const staging = await makeStagingFolder(parent, baseName(groupPath));
    try {
      try {
        writeGroupFile(path.join(staging, GROUP_FILE), {});
      } catch (error) {
        throw new DosnaError(`cannot write group file in ${staging}: ${hdf5Reason(error)}`, { cause: error });
      }
      try {
        fs.renameSync(staging, dir);
        return true;
      } catch (error) {
        const code = errorCode(error);
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      }
      const now = this.kind(groupPath);
      if (now === 'group') return false;
      if (now === 'dataset') throw new DatasetExistsError(`a dataset named ${JSON.stringify(groupPath)} exists in ${this.root}`);
      throw new DosnaError(`cannot create group ${JSON.stringify(groupPath)}: ${dir} exists and is neither a dataset nor a group`);
    } finally {
      await fs.promises.rm(staging, { recursive: true, force: true });
    }
  }

  async deleteGroup(groupPath: string): Promise<void> {
    if (groupPath === ROOT) throw new DosnaError('the root group cannot be deleted');
    const dir = this.requireGroup(groupPath);
    if ((await this.list(groupPath)).length > 0) throw new DosnaError(`group ${JSON.stringify(groupPath)} is not empty`);
    const aside = asideName(path.dirname(dir), baseName(groupPath), 'deleted');
    try {
      await fs.promises.rename(dir, aside);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') throw new GroupNotFoundError(`group ${JSON.stringify(groupPath)} not found in ${this.root}`, { cause: error });
      throw error;
    }
    await fs.promises.rm(aside, { recursive: true, force: true });
  }

  async list(groupPath: string): Promise<NodeEntry[]> {
    const dir = this.requireGroup(groupPath);
    const entries = await fs.promises.readdir(dir, { withFileTypes: true });
    const out: NodeEntry[] = [];
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith(RESERVED_PREFIX) || isScratchName(e.name)) continue;
      let child: string;
      try {
        child = checkPath(groupPath === ROOT ? e.name : `${groupPath}/${e.name}`);
      } catch {
        continue; // a folder no dataset or group could have made
      }
      const kind = this.kind(child);
      if (kind) out.push({ name: e.name, kind });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  // -------------------------------------------------------------------------------------------
  // Attributes and metadata: whole files, committed over the generation they were based on.

  private datasetFile(meta: DatasetMeta): string {
    return path.join(this.dir(meta.name), METADATA_FILE);
  }

  /** The group file of a group (the root's need not exist: it has no attributes then). */
  private groupFile(groupPath: string): string {
    if (groupPath !== ROOT) this.requireGroup(groupPath);
    return path.join(this.dir(groupPath, 'group'), GROUP_FILE);
  }

  /** Reads dataset.h5 of this incarnation of the dataset, with a generation that held throughout. */
  private readDataset(meta: DatasetMeta): { meta: DatasetMeta; attrs: Attrs; generation: Generation } {
    const file = this.datasetFile(meta);
    for (let attempt = 1; ; attempt++) {
      const before = statGeneration(file);
      const read = before === null ? undefined : readDatasetFile(file, meta.name, true);
      if (!read || (meta.uid && read.meta.uid !== meta.uid)) {
        throw new DatasetNotFoundError(`dataset ${JSON.stringify(meta.name)} not found in ${this.root}`);
      }
      if (statGeneration(file) === before) return { ...read, generation: before! };
      if (attempt >= READ_ATTEMPTS) throw new DosnaError(`dataset metadata file ${file} kept changing while it was read`);
    }
  }

  async readAttrs(owner: AttrsOwner): Promise<AttrsVersion> {
    if ('dataset' in owner) {
      const { attrs, generation } = this.readDataset(owner.dataset);
      return { attrs, generation };
    }
    const file = this.groupFile(owner.group);
    for (let attempt = 1; ; attempt++) {
      const before = statGeneration(file);
      if (before === null) {
        if (owner.group !== ROOT) throw new GroupNotFoundError(`group ${JSON.stringify(owner.group)} not found in ${this.root}`);
        return { attrs: {}, generation: null };
      }
      const attrs = readGroupFile(file) ?? {};
      if (statGeneration(file) === before) return { attrs, generation: before };
      if (attempt >= READ_ATTEMPTS) throw new DosnaError(`group file ${file} kept changing while it was read`);
    }
  }

  async writeAttrsIf(owner: AttrsOwner, attrs: Attrs, expected: Generation | null): Promise<Generation | undefined> {
    if ('dataset' in owner) {
      const current = this.readDataset(owner.dataset);
      if (current.generation !== expected) return undefined;
      return this.commitDatasetFile(current.meta, attrs, expected);
    }
    const file = this.groupFile(owner.group);
    return this.commit(file, expected, (tmp) => writeGroupFile(tmp, attrs));
  }

  async writeMetaIf(meta: DatasetMeta, expected: Generation): Promise<Generation | undefined> {
    const current = this.readDataset(meta);
    if (current.generation !== expected) return undefined;
    return this.commitDatasetFile(meta, current.attrs, expected);
  }

  private commitDatasetFile(meta: DatasetMeta, attrs: Attrs, expected: Generation): Promise<Generation | undefined> {
    checkDatasetOptions(meta.name, meta.options);
    return this.commit(this.datasetFile(meta), expected, (tmp) => writeMetaFile(tmp, meta, attrs));
  }

  /** Writes a new version of `file` beside it and commits it if `file` is still at `expected`. */
  private async commit(file: string, expected: Generation | null, write: (tmp: string) => void): Promise<Generation | undefined> {
    const tmp = tmpName(file);
    try {
      write(tmp);
    } catch (error) {
      fs.rmSync(tmp, { force: true });
      throw new DosnaError(`cannot write ${file}: ${hdf5Reason(error)}`, { cause: error });
    }
    const generation = await stampFile(tmp);
    return (await commitFile(file, tmp, () => statGeneration(file) === expected)) ? generation : undefined;
  }
}
