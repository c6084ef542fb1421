/**
 * Groups and attributes of the `s3` and `ceph` backends.
 *
 * ```text
 * <bucket>/.dosna-group.json              the root group's attributes (when it has any)
 * <bucket>/<group>/.dosna-group.json      a group: its marker, holding its attributes
 * <bucket>/<group>/<dataset>...           its datasets (each laid out as at the top) and groups
 * <bucket>/<dataset>/.dosna-attrs.json    a dataset's attributes
 * ```
 *
 * Attributes are JSON documents (attrs.ts: plain JSON for what JSON can say), kept in their
 * own small object rather than S3 user metadata, which is limited to 2 KB. Every change is a
 * PUT conditional on the ETag the change was based on (`If-None-Match: *` for the first), so
 * two processes setting different keys both keep theirs. A dataset's attribute object sits
 * under its prefix, so it goes with the dataset when the dataset is deleted or re-created.
 */
import { decodeAttrs, encodeAttrs, type Attrs, type AttrsVersion } from '../../attrs.js';
import { CorruptChunkError, DatasetExistsError, DosnaError, GroupNotFoundError } from '../../errors.js';
import { checkPath, isValidPath, parentOf, RESERVED_PREFIX, ROOT } from '../../paths.js';
import type { AttrsOwner, Generation, NodeEntry, NodeKind } from '../../store.js';
import type { S3Access } from './access.js';

export const GROUP_OBJECT = '.dosna-group.json';
export const ATTRS_OBJECT = '.dosna-attrs.json';

const JSON_TYPE = 'application/json';

/** Groups and attributes in one bucket; `metaKey` is the layout's key of a dataset's metadata object. */
export class ObjectNodes {
  constructor(private readonly access: S3Access, private readonly metaKey: (name: string) => string) {}

  private markerKey(groupPath: string): string {
    return groupPath === ROOT ? GROUP_OBJECT : `${groupPath}/${GROUP_OBJECT}`;
  }

  private where(key: string): string {
    return `s3://${this.access.bucket}/${key}`;
  }

  private notFound(groupPath: string): GroupNotFoundError {
    return new GroupNotFoundError(`group ${JSON.stringify(groupPath)} not found in bucket ${JSON.stringify(this.access.bucket)}`);
  }

  async kind(nodePath: string): Promise<NodeKind | undefined> {
    if (nodePath === ROOT) return 'group';
    checkPath(nodePath);
    const [dataset, group] = await Promise.all([this.access.head(this.metaKey(nodePath)), this.access.head(this.markerKey(nodePath))]);
    if (dataset) return 'dataset';
    return group ? 'group' : undefined;
  }

  private async requireGroup(groupPath: string): Promise<void> {
    if ((await this.kind(groupPath)) !== 'group') throw this.notFound(groupPath);
  }

  async createGroup(groupPath: string): Promise<boolean> {
    checkPath(groupPath, 'group');
    const kind = await this.kind(groupPath);
    if (kind === 'group') return false;
    if (kind === 'dataset') throw new DatasetExistsError(`a dataset named ${JSON.stringify(groupPath)} exists in bucket ${JSON.stringify(this.access.bucket)}`);
    await this.requireGroup(parentOf(groupPath));
    // Conditional: of two processes making it, one writes the marker and the other finds it.
    const etag = await this.access.put(this.markerKey(groupPath), new TextEncoder().encode(encodeAttrs({})), { contentType: JSON_TYPE, ifAbsent: true });
    if (etag !== undefined && (await this.access.head(this.metaKey(groupPath)))) {
      // A dataset of that path was created in between: the dataset stays, the marker goes.
      await this.access.delete(this.markerKey(groupPath));
      throw new DatasetExistsError(`a dataset named ${JSON.stringify(groupPath)} exists in bucket ${JSON.stringify(this.access.bucket)}`);
    }
    return etag !== undefined;
  }

  async deleteGroup(groupPath: string): Promise<void> {
    if (groupPath === ROOT) throw new DosnaError('the root group cannot be deleted');
    await this.requireGroup(groupPath);
    if ((await this.list(groupPath)).length > 0) throw new DosnaError(`group ${JSON.stringify(groupPath)} is not empty`);
    await this.access.delete(this.markerKey(groupPath));
  }

  /** The datasets and groups in a group: the names one level down (object keys and key prefixes), told apart by a HEAD each. */
  async list(groupPath: string): Promise<NodeEntry[]> {
    await this.requireGroup(groupPath);
    const prefix = groupPath === ROOT ? '' : `${groupPath}/`;
    const names = new Set<string>();
    for await (const page of this.access.listPages(prefix, '/')) {
      for (const p of page.prefixes) names.add(p.slice(prefix.length, -1));
      for (const o of page.objects) names.add(o.key.slice(prefix.length));
    }
    const candidates = [...names].filter((n) => n.length > 0 && !n.startsWith(RESERVED_PREFIX) && isValidPath(prefix + n));
    const kinds = await Promise.all(candidates.map((n) => this.kind(prefix + n)));
    return candidates
      .map((name, i) => ({ name, kind: kinds[i] }))
      .filter((e): e is NodeEntry => e.kind !== undefined)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private attrsKey(owner: AttrsOwner): string {
    return 'dataset' in owner ? `${owner.dataset.name}/${ATTRS_OBJECT}` : this.markerKey(owner.group);
  }

  async readAttrs(owner: AttrsOwner): Promise<AttrsVersion> {
    const key = this.attrsKey(owner);
    const got = await this.access.getObject(key);
    if (!got) {
      if ('group' in owner && owner.group !== ROOT) throw this.notFound(owner.group);
      return { attrs: {}, generation: null };
    }
    let attrs: Attrs;
    try {
      attrs = decodeAttrs(new TextDecoder().decode(got.bytes));
    } catch (error) {
      throw new CorruptChunkError(`attributes object ${this.where(key)} cannot be read: ${(error as Error).message}`, this.where(key), { cause: error });
    }
    return { attrs, generation: got.etag ?? '' };
  }

  async writeAttrsIf(owner: AttrsOwner, attrs: Attrs, expected: Generation | null): Promise<Generation | undefined> {
    const key = this.attrsKey(owner);
    const body = new TextEncoder().encode(encodeAttrs(attrs));
    return this.access.put(key, body, { contentType: JSON_TYPE, ...(expected === null ? { ifAbsent: true } : { ifMatch: expected }) });
  }
}

