/**
 * Shipping chunk functions to other threads or processes. A self-contained function goes by
 * its source; a module kernel (`dn.kernel(url, name)`) goes by reference. A function that
 * uses variables of its enclosing scope cannot run elsewhere, and we say so before any chunk
 * is touched: its free identifiers are found with a real parser (acorn) and compared with
 * the globals every thread has.
 */
import { parse, type Node } from 'acorn';
import { fullAncestor } from 'acorn-walk';
import { KernelShippingError } from './errors.js';
import { isKernelRef, type ChunkFunction, type Kernel, type KernelRef } from './kernel.js';

/** A chunk function as sent to a worker: its source, or a module reference. */
export type ShippedKernel = { readonly kind: 'source'; readonly source: string } | KernelRef;

/**
 * Bundlers and test runners sometimes wrap functions with helpers such as esbuild's
 * `__name(fn, "name")`; workers define harmless stand-ins (see `installShims`).
 */
const SHIMMED = ['__name'];

/** Prepares `kernel` for another thread; throws `KernelShippingError` when it cannot run there. */
export function shipKernel(kernel: Kernel): ShippedKernel {
  if (isKernelRef(kernel)) return kernel;
  if (typeof kernel !== 'function') throw new KernelShippingError('a map/apply function must be a function or dn.kernel(url, exportName)');
  const source = Function.prototype.toString.call(kernel);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw new KernelShippingError(`function ${kernel.name || '(anonymous)'} is native or bound, so its source cannot be sent to a worker; use dn.kernel(url, exportName)`);
  }
  const expression = toExpression(source);
  const free = freeIdentifiers(expression).filter((name) => !(name in globalThis) && !SHIMMED.includes(name));
  if (free.length > 0) {
    throw new KernelShippingError(
      `function ${kernel.name || '(anonymous)'} uses ${free.map((n) => `'${n}'`).join(', ')} from its enclosing scope, `
      + 'which a worker thread cannot see. Make it self-contained (pass values through the `args` option; '
      + 'return a typed array of the chunk\'s cells instead of building an ndarray), or export it from a module '
      + 'and pass dn.kernel(new URL(\'./kernels.js\', import.meta.url), \'name\').',
    );
  }
  return { kind: 'source', source: expression };
}

/** The function's source as an expression: method shorthand `f(x) {}` becomes `function f(x) {}`. */
function toExpression(source: string): string {
  if (parses(`(${source})`)) return source;
  const asFunction = `function ${source.replace(/^async\s+/, '')}`;
  const prefixed = /^async\s/.test(source) ? `async ${asFunction}` : asFunction;
  if (parses(`(${prefixed})`)) return prefixed;
  throw new KernelShippingError(`cannot parse the function's source to send it to a worker: ${source.slice(0, 80)}...`);
}

function parses(code: string): boolean {
  try {
    parse(code, { ecmaVersion: 'latest' });
    return true;
  } catch {
    return false;
  }
}

/** Identifiers a function reads that none of its own parameters or declarations provide. */
export function freeIdentifiers(expression: string): string[] {
  const ast = parse(`(${expression})`, { ecmaVersion: 'latest' }) as Node;
  const declared = new Set<string>(['arguments', 'undefined', 'this']);
  const used = new Set<string>();
  const declare = (pattern: Node | null | undefined): void => {
    if (!pattern) return;
    const p = pattern as Node & Record<string, unknown>;
    switch (p.type) {
      case 'Identifier': declared.add(p.name as string); break;
      case 'ObjectPattern': for (const prop of p.properties as (Node & Record<string, Node>)[]) declare(prop.type === 'RestElement' ? prop.argument : prop.value); break;
      case 'ArrayPattern': for (const el of p.elements as Node[]) declare(el); break;
      case 'RestElement': declare(p.argument as Node); break;
      case 'AssignmentPattern': declare(p.left as Node); break;
    }
  };
  fullAncestor(ast, (node, _state, ancestors) => {
    const n = node as Node & Record<string, unknown>;
    switch (n.type) {
      case 'FunctionExpression': case 'FunctionDeclaration': case 'ArrowFunctionExpression':
        if (n.id) declare(n.id as Node);
        for (const param of n.params as Node[]) declare(param);
        return;
      case 'VariableDeclarator': declare(n.id as Node); return;
      case 'ClassDeclaration': case 'ClassExpression': if (n.id) declare(n.id as Node); return;
      case 'CatchClause': declare(n.param as Node); return;
      case 'Identifier': break;
      default: return;
    }
    const parent = ancestors[ancestors.length - 2] as (Node & Record<string, unknown>) | undefined;
    if (parent) {
      if (parent.type === 'MemberExpression' && parent.property === node && !parent.computed) return;
      if ((parent.type === 'Property' || parent.type === 'PropertyDefinition' || parent.type === 'MethodDefinition')
        && parent.key === node && !parent.computed && !(parent as { shorthand?: boolean }).shorthand) return;
      if ((parent.type === 'LabeledStatement' || parent.type === 'BreakStatement' || parent.type === 'ContinueStatement') && parent.label === node) return;
    }
    used.add(n.name as string);
  });
  return [...used].filter((name) => !declared.has(name)).sort();
}

const revived = new Map<string, ChunkFunction>();

/** In a worker: the function for a shipped kernel (compiled once per thread). */
export async function reviveKernel(shipped: ShippedKernel): Promise<ChunkFunction> {
  if (isKernelRef(shipped)) {
    const { resolveKernel } = await import('./kernel.js');
    return resolveKernel(shipped);
  }
  let fn = revived.get(shipped.source);
  if (!fn) {
    fn = new Function(`"use strict"; return (${shipped.source});`)() as ChunkFunction;
    revived.set(shipped.source, fn);
  }
  return fn;
}

/** Stand-ins for helpers that transpilers inject into function sources. */
export function installShims(): void {
  const g = globalThis as Record<string, unknown>;
  g.__name ??= (target: unknown) => target;
}
