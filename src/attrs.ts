/**
 * Attributes of datasets, groups and the connection's root (h5py's `.attrs`, zarr's
 * `.attrs`): small named values kept next to the data.
 *
 * A value is a string, a number (NaN and infinities included), a bigint, a typed array (kept
 * with its dtype, as an HDF5 attribute or a NumPy array is), or JSON data (booleans, null,
 * arrays and plain objects of JSON values). Backends store them where the other tools look
 * (HDF5 attributes, a JSON object); this module checks values, copies them in and out (a
 * caller never shares a typed array with the store), encodes them as JSON for the stores that
 * keep JSON, and runs every change as read, change, conditional write, so two processes
 * setting different keys at once both keep theirs.
 */
import { untilCommitted } from './commit.js';
import { allocate, dtypeOfArray, fromNumpyTypeString, isBigIntDType, toNumpyTypeString, type TypedArray } from './dtypes.js';
import { DTypeError, InvalidNameError } from './errors.js';
import type { Generation } from './store.js';

/** JSON data: what `JSON.stringify` writes and `JSON.parse` gives back unchanged. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** An attribute value. */
export type AttrValue = string | number | bigint | boolean | null | TypedArray | JsonValue[] | { [key: string]: JsonValue };

/** Attribute values by name. */
export type Attrs = Record<string, AttrValue>;

/** A node's attributes and their generation (`null`: none were ever written). */
export interface AttrsVersion {
  readonly attrs: Attrs;
  readonly generation: Generation | null;
}

/**
 * Names DosNa keeps a dataset's own metadata under (the root attributes of `dataset.h5`), and
 * what dosna adds: a dataset's attributes may not use them, on any backend, so a dataset moves
 * between backends unchanged.
 */
export const DATASET_METADATA_NAMES: readonly string[] = ['shape', 'dtype', 'fillvalue', 'chunk_grid', 'chunk_size', 'compression', 'compression_level'];
/** Attribute names starting with this are dosna's own (`dosna_uid`, ...). */
export const RESERVED_ATTR_PREFIX = 'dosna_';

/** Checks an attribute name: a non-empty string of at most 255 UTF-8 bytes, not reserved. */
export function checkAttrName(name: unknown, ofDataset: boolean): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidNameError(`attribute name must be a non-empty string, got ${JSON.stringify(name)}`);
  if (!name.isWellFormed()) throw new InvalidNameError(`attribute name ${JSON.stringify(name)} is not valid Unicode (it has a lone surrogate)`);
  if (name.includes('\0')) throw new InvalidNameError(`attribute name ${JSON.stringify(name)} contains a NUL character`);
  if (Buffer.byteLength(name, 'utf8') > 255) throw new InvalidNameError(`attribute name ${JSON.stringify(name.slice(0, 20))}... is longer than 255 bytes in UTF-8`);
  if (name.startsWith(RESERVED_ATTR_PREFIX)) throw new InvalidNameError(`attribute name ${JSON.stringify(name)}: names starting with ${RESERVED_ATTR_PREFIX} are dosna's own`);
  if (ofDataset && DATASET_METADATA_NAMES.includes(name)) {
    throw new InvalidNameError(`attribute name ${JSON.stringify(name)} is reserved for the dataset's own metadata (${DATASET_METADATA_NAMES.join(', ')})`);
  }
  return name;
}

/** The kinds of attribute value, as the stores tell them apart. */
export type AttrKind = 'string' | 'number' | 'bigint' | 'typed' | 'json';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function checkJson(value: unknown, where: string): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new DTypeError(`${where} is ${value}: inside arrays and objects attribute values must be JSON (no NaN or infinity); give the number alone, or a Float64Array`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkJson(v, `${where}[${i}]`));
    return;
  }
  if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) checkJson(v, `${where}.${k}`);
    return;
  }
  const kind = typeof value === 'bigint' ? 'a bigint' : ArrayBuffer.isView(value) ? 'a typed array' : typeof value === 'object' ? `a ${(value as object).constructor?.name ?? 'object'}` : `a ${typeof value}`;
  throw new DTypeError(`${where} is ${kind}: attribute values are strings, numbers, bigints, typed arrays, or JSON data (typed arrays and bigints only at the top level)`);
}

/** The kind of an attribute value; throws `DTypeError` for what cannot be stored. */
export function attrKind(name: string, value: unknown): AttrKind {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'bigint') {
    if (value < -(2n ** 63n) || value >= 2n ** 64n) throw new DTypeError(`attribute ${JSON.stringify(name)}: ${value} does not fit in 64 bits`);
    return 'bigint';
  }
  if (ArrayBuffer.isView(value)) {
    if (value instanceof DataView || value instanceof Uint8ClampedArray) throw new DTypeError(`attribute ${JSON.stringify(name)}: a ${value.constructor.name} has no dtype; use a typed array such as Uint8Array`);
    dtypeOfArray(value); // throws for typed arrays without a dtype (Float16Array)
    return 'typed';
  }
  checkJson(value, `attribute ${JSON.stringify(name)}`);
  if (value === undefined) throw new DTypeError(`attribute ${JSON.stringify(name)} is undefined; delete it instead`);
  return 'json';
}

/** A copy the caller cannot change behind the store's back (typed arrays and JSON are copied). */
export function copyAttr(value: AttrValue): AttrValue {
  if (ArrayBuffer.isView(value)) return (value as TypedArray).slice() as TypedArray;
  if (typeof value === 'object' && value !== null) return structuredClone(value);
  return value;
}

// ---------------------------------------------------------------------------------------------
// JSON encoding, for stores that keep attributes as a JSON document (s3, ceph; zarr keeps
// plain JSON). Strings, finite numbers and JSON data are written as they are, so other tools
// read them; what JSON cannot say goes in an envelope { "$dosna": kind, ... }.

const ENVELOPE = '$dosna';

function numberToJson(value: number): number | string {
  if (Number.isNaN(value)) return 'nan';
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  return value;
}

function numberFromJson(value: unknown): number {
  if (value === 'nan') return NaN;
  if (value === 'inf') return Infinity;
  if (value === '-inf') return -Infinity;
  if (typeof value === 'number') return value;
  throw new DTypeError(`not an encoded number: ${JSON.stringify(value)}`);
}

/** One value as JSON. */
export function encodeAttr(value: AttrValue): JsonValue {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0) ? value : { [ENVELOPE]: 'number', value: Object.is(value, -0) ? '-0' : numberToJson(value) };
  if (typeof value === 'bigint') return { [ENVELOPE]: 'bigint', value: value.toString() };
  if (ArrayBuffer.isView(value)) {
    const array = value as TypedArray;
    const data = Array.from(array as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? v.toString() : numberToJson(v)));
    return { [ENVELOPE]: 'typed', dtype: toNumpyTypeString(dtypeOfArray(array)), data };
  }
  // JSON data: an object that has an envelope key of its own is wrapped, so it reads back as itself.
  if (isPlainObject(value) && ENVELOPE in value) return { [ENVELOPE]: 'json', value: value as JsonValue };
  return value as JsonValue;
}

/** One value from its JSON encoding. */
export function decodeAttr(json: unknown): AttrValue {
  if (!isPlainObject(json) || !(ENVELOPE in json)) return json as AttrValue;
  switch (json[ENVELOPE]) {
    case 'number': return json.value === '-0' ? -0 : numberFromJson(json.value);
    case 'bigint': return BigInt(json.value as string);
    case 'json': return json.value as AttrValue;
    case 'typed': {
      const dtype = fromNumpyTypeString(json.dtype as string);
      const data = json.data as unknown[];
      const out = allocate(dtype, data.length);
      if (isBigIntDType(dtype)) for (let i = 0; i < data.length; i++) (out as BigInt64Array)[i] = BigInt(data[i] as string);
      else for (let i = 0; i < data.length; i++) (out as Float64Array)[i] = numberFromJson(data[i]);
      return out;
    }
    default: throw new DTypeError(`unknown attribute encoding ${JSON.stringify(json[ENVELOPE])}`);
  }
}

/** Attributes as a JSON document's text. */
export function encodeAttrs(attrs: Attrs): string {
  return `${JSON.stringify(Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, encodeAttr(v)])), null, 1)}\n`;
}

/** Attributes from a JSON document's text. */
export function decodeAttrs(text: string): Attrs {
  const doc = JSON.parse(text) as unknown;
  if (!isPlainObject(doc)) throw new DTypeError('an attributes document must be a JSON object');
  return Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, decodeAttr(v)]));
}

// ---------------------------------------------------------------------------------------------

/** Where a node's attributes live: read with their generation, written only over that generation. */
export interface AttrsStorage {
  /** What the attributes belong to, for messages: `dataset "vol"`, `group "scan1"`, `the root group`. */
  readonly what: string;
  /** Whether the node is a dataset (dataset attributes may not use DosNa's metadata names). */
  readonly ofDataset: boolean;
  read(): Promise<AttrsVersion>;
  /** Replaces them if their generation is still `expected`; the new generation, or undefined when they changed. */
  writeIf(attrs: Attrs, expected: Generation | null): Promise<Generation | undefined>;
}

/**
 * The attributes of a dataset, a group or the root, as `ds.attrs`, `group.attrs`,
 * `con.attrs`. Every method reads the store (no stale copy is kept); changes are conditional
 * writes, retried when another writer changed the attributes in between.
 */
export class Attributes {
  constructor(private readonly storage: AttrsStorage) {}

  /** The value of `name` (a copy), or `undefined` when there is none. */
  async get(name: string): Promise<AttrValue | undefined> {
    const { attrs } = await this.storage.read();
    return Object.hasOwn(attrs, name) ? copyAttr(attrs[name]) : undefined;
  }

  /** Whether there is an attribute `name`. */
  async has(name: string): Promise<boolean> {
    return Object.hasOwn((await this.storage.read()).attrs, name);
  }

  /** Sets `name` to `value` (copied). */
  async set(name: string, value: AttrValue): Promise<void> {
    await this.update({ [name]: value });
  }

  /** Sets several at once, in one write (as h5py's `attrs.update`). */
  async update(values: Attrs): Promise<void> {
    if (typeof values !== 'object' || values === null || Array.isArray(values)) throw new DTypeError('attrs.update takes an object of name: value');
    const entries = Object.entries(values).map(([name, value]) => {
      checkAttrName(name, this.storage.ofDataset);
      attrKind(name, value);
      return [name, copyAttr(value)] as const;
    });
    await this.change((attrs) => {
      for (const [name, value] of entries) attrs[name] = value;
      return true;
    });
  }

  /** Deletes `name`; resolves whether it existed. */
  async delete(name: string): Promise<boolean> {
    let existed = false;
    await this.change((attrs) => {
      existed = Object.hasOwn(attrs, name);
      if (existed) delete attrs[name];
      return existed;
    });
    return existed;
  }

  /** The names, sorted. */
  async keys(): Promise<string[]> {
    return Object.keys((await this.storage.read()).attrs).sort();
  }

  /** Every attribute (copies), by name. */
  async toObject(): Promise<Attrs> {
    const { attrs } = await this.storage.read();
    return Object.fromEntries(Object.keys(attrs).sort().map((k) => [k, copyAttr(attrs[k])]));
  }

  /** Read, change (`edit` returns whether it changed anything), conditional write; again if another writer came in between. */
  private async change(edit: (attrs: Attrs) => boolean): Promise<void> {
    await untilCommitted(`the attributes of ${this.storage.what}`, async () => {
      const { attrs, generation } = await this.storage.read();
      const next = { ...attrs };
      if (!edit(next)) return true;
      return (await this.storage.writeIf(next, generation)) === undefined ? undefined : true;
    });
  }
}
