/**
 * Groups: named folders of datasets and groups (h5py's and zarr's groups). `con.createGroup`
 * and `con.getGroup` give a `Group`; its methods take names relative to it, and the
 * connection's methods take whole paths (`scan1/vol`), so both spellings reach the same data.
 */
import { Attributes } from './attrs.js';
import type { Connection, CreateDatasetOptions } from './connection.js';
import type { Dataset } from './dataset/index.js';
import { baseName, joinPath, ROOT } from './paths.js';
import type { NodeEntry } from './store.js';

/** Options of `delGroup`. */
export interface DelGroupOptions {
  /** Delete what the group holds too (otherwise a group that is not empty is refused). */
  recursive?: boolean;
}

/** A group of a connection (the root group has path `''`). */
export class Group {
  /** @internal Use `con.createGroup` / `con.getGroup`. */
  constructor(readonly connection: Connection, readonly path: string) {}

  /** The last segment of the path (`''` for the root). */
  get name(): string {
    return this.path === ROOT ? ROOT : baseName(this.path);
  }

  /** The group's attributes: `await g.attrs.set('energy_keV', 12.4)`. */
  get attrs(): Attributes {
    return groupAttributes(this.connection, this.path);
  }

  createDataset(name: string, options: CreateDatasetOptions): Promise<Dataset> {
    return this.connection.createDataset(joinPath(this.path, name), options);
  }

  getDataset(name: string): Promise<Dataset> {
    return this.connection.getDataset(joinPath(this.path, name));
  }

  hasDataset(name: string): Promise<boolean> {
    return this.connection.hasDataset(joinPath(this.path, name));
  }

  delDataset(name: string): Promise<void> {
    return this.connection.delDataset(joinPath(this.path, name));
  }

  createGroup(name: string): Promise<Group> {
    return this.connection.createGroup(joinPath(this.path, name));
  }

  getGroup(name: string): Promise<Group> {
    return this.connection.getGroup(joinPath(this.path, name));
  }

  delGroup(name: string, options?: DelGroupOptions): Promise<void> {
    return this.connection.delGroup(joinPath(this.path, name), options);
  }

  /** The datasets and groups in this group, sorted by name. */
  list(): Promise<NodeEntry[]> {
    return this.connection.list(this.path);
  }

  toString(): string {
    return `Group(${JSON.stringify(this.path || '/')})`;
  }
}

/** @internal The attributes of group `path` of a connection (`''`: the root). */
export function groupAttributes(connection: Connection, path: string): Attributes {
  return new Attributes({
    what: path === ROOT ? 'the root group' : `group ${JSON.stringify(path)}`,
    ofDataset: false,
    read: () => connection.store.readAttrs({ group: path }),
    writeIf: (attrs, expected) => connection.store.writeAttrsIf({ group: path }, attrs, expected),
  });
}
