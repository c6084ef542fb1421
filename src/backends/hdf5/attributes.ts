/**
 * Attributes as HDF5 attributes of a file's root group, where h5py finds them
 * (`h5py.File('vol/dataset.h5').attrs`): strings as UTF-8 strings, whole numbers as int64
 * and other numbers as float64 scalars (as h5py stores a Python int and float), bigints as
 * int64 (uint64 above 2^63) scalars, typed arrays as 1-D attributes of their dtype, and JSON
 * data as its JSON text. Which attributes hold JSON text or bigints is recorded in
 * one more attribute, `dosna_attr_kinds`, so they read back as they were set; attributes
 * other tools wrote read as their nearest value (an integer scalar as a number when it is
 * safe, strings as strings, arrays as typed arrays).
 */
import { attrKind, RESERVED_ATTR_PREFIX, type Attrs, type AttrValue } from '../../attrs.js';
import { dtypeOfArray, type TypedArray } from '../../dtypes.js';
import { h5, H5WASM_CODES } from './h5lib.js';

/** The attribute that says which attributes hold JSON text or bigints. */
export const KINDS_ATTRIBUTE = 'dosna_attr_kinds';

/** What attributes are written on: a group or dataset of a file being written (h5wasm objects). */
type AttributeHolder = Pick<InstanceType<ReturnType<typeof h5>['lib']['Group']>, 'create_attribute'>;

/** Writes `attrs` as attributes of `root` (a group or dataset of a file being written). */
export function writeHdf5Attrs(root: AttributeHolder, attrs: Attrs): void {
  const kinds: Record<string, 'json' | 'bigint'> = {};
  for (const [name, value] of Object.entries(attrs)) {
    const kind = attrKind(name, value);
    switch (kind) {
      case 'string':
        root.create_attribute(name, value as string);
        break;
      case 'number': {
        // Whole numbers as int64, as h5py stores a Python int (so `attrs['frames']` indexes in Python).
        const n = value as number;
        if (Number.isSafeInteger(n) && !Object.is(n, -0)) root.create_attribute(name, BigInt64Array.of(BigInt(n)), [], '<q');
        else root.create_attribute(name, Float64Array.of(n), [], '<d');
        break;
      }
      case 'bigint': {
        const big = value as bigint;
        if (big >= 2n ** 63n) root.create_attribute(name, BigUint64Array.of(big), [], '<Q');
        else root.create_attribute(name, BigInt64Array.of(big), [], '<q');
        kinds[name] = 'bigint';
        break;
      }
      case 'typed': {
        const array = value as TypedArray;
        root.create_attribute(name, array as never, [array.length], H5WASM_CODES[dtypeOfArray(array)]);
        break;
      }
      case 'json':
        root.create_attribute(name, JSON.stringify(value));
        kinds[name] = 'json';
        break;
    }
  }
  if (Object.keys(kinds).length > 0) root.create_attribute(KINDS_ATTRIBUTE, JSON.stringify(kinds));
}

/** Reads the attributes of object `objPath` (the root group by default) of the open file `id`, leaving out the names in `skip` and dosna's own. */
export function readHdf5Attrs(id: bigint, skip: readonly string[], objPath = '/'): Attrs {
  const { lib, M } = h5();
  const names = M.get_attribute_names(id, objPath);
  let kinds: Record<string, string> = {};
  if (names.includes(KINDS_ATTRIBUTE)) {
    try {
      kinds = JSON.parse(String(new lib.Attribute(id, objPath, KINDS_ATTRIBUTE).value)) as Record<string, string>;
    } catch {
      kinds = {};
    }
  }
  const attrs: Attrs = {};
  for (const name of names) {
    if (skip.includes(name) || name.startsWith(RESERVED_ATTR_PREFIX)) continue;
    const value = attributeValue(new lib.Attribute(id, objPath, name), kinds[name]);
    if (value !== undefined) attrs[name] = value;
  }
  return attrs;
}

function attributeValue(attribute: { metadata: { shape: number[] | null; type: number }; value: unknown; json_value: unknown }, kind: string | undefined): AttrValue | undefined {
  const { shape } = attribute.metadata;
  if (shape === null) return undefined; // an empty (null dataspace) attribute
  const raw = attribute.value;
  const scalar = shape.length === 0;
  if (typeof raw === 'string' || (Array.isArray(raw) && raw.every((v) => typeof v === 'string'))) {
    const text = Array.isArray(raw) ? (scalar ? raw[0] : undefined) : raw;
    if (text === undefined) return raw as string[]; // an array of strings (h5py's list of str)
    if (kind === 'json') {
      try {
        return JSON.parse(text) as AttrValue;
      } catch {
        return text;
      }
    }
    return text;
  }
  if (ArrayBuffer.isView(raw) && !(raw instanceof DataView)) {
    const array = raw as TypedArray;
    if (!scalar) return array;
    const v = array[0];
    if (typeof v === 'bigint') return kind === 'bigint' || !Number.isSafeInteger(Number(v)) ? v : Number(v);
    return v;
  }
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'bigint') return kind === 'bigint' || !Number.isSafeInteger(Number(raw)) ? raw : Number(raw);
  // Other HDF5 types (compound, enum: h5py's bool): what h5wasm gives as JSON, when it can.
  const json = attribute.json_value;
  return json === undefined ? undefined : (json as AttrValue);
}
