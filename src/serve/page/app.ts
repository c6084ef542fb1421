/**
 * The viewer page of `dosna serve`: a client of the server's own h5grove API. A tree of groups
 * and datasets, the metadata and attributes of the selection, and a slice viewer: two displayed
 * axes, a slider per other axis, a colour map with auto or fixed limits, a colour bar, zoom,
 * and the value under the cursor; 1-D data as a line plot. Only the slice on screen is read,
 * and a newer request cancels the one still running, so paging through a large volume on a
 * remote store stays responsive. The pixels come from ../../view/render.ts, as `dosna view`'s.
 */
import {
  COLOUR_MAPS, colourBar, defaultSlice, formatValue, paint, selectionString, transposeIfNeeded, valueRange,
  type ColourMap, type SliceChoice, type Values,
} from '../../view/render.js';

interface H5Type { class: number; size: number; sign?: number }
interface AttributeMeta { name: string; shape: number[]; type: H5Type & { dtype: string } }
interface Entity {
  kind: 'dataset' | 'group';
  name: string;
  attributes: AttributeMeta[];
  children?: Entity[];
  shape?: number[];
  type?: H5Type & { dtype: string };
  chunks?: number[];
  filters?: { id: number; name: string }[] | null;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $<HTMLSpanElement>('status');
const viewer = $<HTMLElement>('viewer');
const image = $<HTMLCanvasElement>('image');
const plot = $<HTMLCanvasElement>('plot');
const cursor = $<HTMLParagraphElement>('cursor');

let file = '';

/** A request to the server's h5grove API; errors carry its `message`. */
async function api(endpoint: string, params: Record<string, string>, signal?: AbortSignal): Promise<Response> {
  const query = new URLSearchParams({ file, ...params });
  const response = await fetch(`${endpoint}?${query}`, { signal });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = ((await response.json()) as { message?: string }).message ?? message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function showStatus(text: string, error = false): void {
  status.textContent = text;
  status.classList.toggle('error', error);
}

/** A typed array for `/data?format=bin&dtype=safe` bytes of this type (little-endian, as sent). */
function typedArray(buffer: ArrayBuffer, type: H5Type): Values {
  if (type.class === 1) return type.size === 4 ? new Float32Array(buffer) : new Float64Array(buffer);
  const signed = type.sign !== 0;
  switch (type.size) {
    case 1: return signed ? new Int8Array(buffer) : new Uint8Array(buffer);
    case 2: return signed ? new Int16Array(buffer) : new Uint16Array(buffer);
    case 4: return signed ? new Int32Array(buffer) : new Uint32Array(buffer);
    default: return signed ? new BigInt64Array(buffer) : new BigUint64Array(buffer);
  }
}

// ---- the tree ------------------------------------------------------------------------------

const childPath = (parent: string, name: string) => (parent === '/' ? `/${name}` : `${parent}/${name}`);

/** Lists a group's children under `list`; groups open on click, datasets show on click. */
async function fillGroup(path: string, list: HTMLUListElement): Promise<void> {
  const meta = (await (await api('meta', { path })).json()) as Entity;
  list.replaceChildren();
  for (const child of meta.children ?? []) {
    const item = document.createElement('li');
    const button = document.createElement('button');
    const full = childPath(path, child.name);
    button.type = 'button';
    button.dataset.path = full;
    button.textContent = child.kind === 'group' ? `▸ ${child.name}/` : child.name;
    item.append(button);
    list.append(item);
    if (child.kind === 'group') {
      const sub = document.createElement('ul');
      item.append(sub);
      button.setAttribute('aria-expanded', 'false');
      button.addEventListener('click', () => {
        const open = button.getAttribute('aria-expanded') === 'true';
        button.setAttribute('aria-expanded', String(!open));
        button.textContent = `${open ? '▸' : '▾'} ${child.name}/`;
        if (open) sub.replaceChildren();
        else fillGroup(full, sub).catch((e: unknown) => showStatus((e as Error).message, true));
        showEntity(full, { ...child, children: undefined }).catch((e: unknown) => showStatus((e as Error).message, true));
        select(button);
      });
    } else {
      button.addEventListener('click', () => {
        select(button);
        showEntity(full, child).catch((e: unknown) => showStatus((e as Error).message, true));
      });
    }
  }
}

function select(button: HTMLButtonElement): void {
  for (const b of document.querySelectorAll('nav button[aria-current]')) b.removeAttribute('aria-current');
  button.setAttribute('aria-current', 'true');
}

// ---- metadata ------------------------------------------------------------------------------

function rows(table: HTMLTableElement, entries: [string, string][]): void {
  table.replaceChildren(...entries.map(([k, v]) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    const td = document.createElement('td');
    th.textContent = k;
    td.textContent = v;
    tr.append(th, td);
    return tr;
  }));
}

async function showEntity(path: string, entity: Entity): Promise<void> {
  $('title').textContent = `${path} (${entity.kind})`;
  const entries: [string, string][] = [['path', path], ['kind', entity.kind]];
  if (entity.kind === 'dataset') {
    entries.push(['shape', entity.shape!.join(' × ')], ['dtype', entity.type!.dtype], ['chunks', entity.chunks!.join(' × ')],
      ['filters', entity.filters?.map((f) => f.name).join(', ') ?? 'none']);
  }
  rows($<HTMLTableElement>('meta'), entries);
  const attrTable = $<HTMLTableElement>('attrs');
  if (entity.attributes.length === 0) rows(attrTable, [['none', '']]);
  else {
    const values = (await (await api('attr', { path })).json()) as Record<string, unknown>;
    rows(attrTable, entity.attributes.map((a) => [a.name, JSON.stringify(values[a.name])]));
  }
  if (entity.kind === 'dataset') openViewer(path, entity);
  else viewer.hidden = true;
}

// ---- the slice viewer ----------------------------------------------------------------------

interface ViewState {
  path: string;
  entity: Entity;
  shape: number[];
  choice: SliceChoice;
  values?: Values;
  /** The displayed slice's rows and columns (1 row for a line plot). */
  rows: number;
  cols: number;
  range: [number, number];
}

let state: ViewState | undefined;
let inFlight: AbortController | undefined;

const colourMapSelect = $<HTMLSelectElement>('colour-map');
colourMapSelect.replaceChildren(...COLOUR_MAPS.map((name) => new Option(name, name)));
const autoLimits = $<HTMLInputElement>('auto-limits');
const vmin = $<HTMLInputElement>('vmin');
const vmax = $<HTMLInputElement>('vmax');
const zoom = $<HTMLSelectElement>('zoom');
const rowAxis = $<HTMLSelectElement>('row-axis');
const colAxis = $<HTMLSelectElement>('col-axis');

function openViewer(path: string, entity: Entity): void {
  const shape = entity.shape!;
  state = { path, entity, shape, choice: defaultSlice(shape), rows: 0, cols: 0, range: [0, 1] };
  viewer.hidden = false;
  $('axes').hidden = shape.length < 2;
  const axisOptions = () => shape.map((d, a) => new Option(`axis ${a} (${d})`, String(a)));
  rowAxis.replaceChildren(...axisOptions());
  colAxis.replaceChildren(...axisOptions());
  if (state.choice.rowAxis !== undefined) rowAxis.value = String(state.choice.rowAxis);
  colAxis.value = String(state.choice.colAxis);
  buildSliders();
  void loadSlice();
}

/** A slider for every axis not displayed. */
function buildSliders(): void {
  const s = state!;
  const fieldset = $('sliders');
  fieldset.replaceChildren();
  s.shape.forEach((extent, axis) => {
    if (axis === s.choice.rowAxis || axis === s.choice.colAxis) return;
    const label = document.createElement('label');
    const slider = document.createElement('input');
    const shown = document.createElement('output');
    slider.type = 'range';
    slider.min = '0';
    slider.max = String(extent - 1);
    slider.value = String(s.choice.indices[axis]);
    slider.dataset.axis = String(axis);
    slider.setAttribute('aria-label', `index of axis ${axis}`);
    shown.textContent = slider.value;
    slider.addEventListener('input', () => {
      const indices = [...s.choice.indices];
      indices[axis] = Number(slider.value);
      s.choice = { ...s.choice, indices };
      shown.textContent = slider.value;
      void loadSlice();
    });
    label.append(`axis ${axis}`, slider, shown);
    fieldset.append(label);
  });
}

function changeAxes(): void {
  const s = state!;
  const [r, c] = [Number(rowAxis.value), Number(colAxis.value)];
  if (r === c) {
    // Picking the other displayed axis swaps the two (a transpose).
    const previous = s.choice;
    if (rowAxis.value === String(previous.colAxis)) colAxis.value = String(previous.rowAxis);
    else rowAxis.value = String(previous.colAxis);
  }
  s.choice = { ...s.choice, rowAxis: Number(rowAxis.value), colAxis: Number(colAxis.value) };
  buildSliders();
  void loadSlice();
}
rowAxis.addEventListener('change', changeAxes);
colAxis.addEventListener('change', changeAxes);

/** Reads the chosen slice (cancelling a read still running) and draws it. */
async function loadSlice(): Promise<void> {
  const s = state!;
  inFlight?.abort();
  const controller = new AbortController();
  inFlight = controller;
  const selection = s.shape.length >= 2 || s.choice.rowAxis !== undefined ? selectionString(s.shape, s.choice) : '';
  const started = performance.now();
  showStatus(`reading ${s.path} [${selection || ':'}]…`);
  try {
    const params: Record<string, string> = { path: s.path, format: 'bin', dtype: 'safe', ...(selection ? { selection } : {}) };
    const buffer = await (await api('data', params, controller.signal)).arrayBuffer();
    if (controller.signal.aborted || state !== s) return;
    const raw = typedArray(buffer, s.entity.type!);
    s.values = transposeIfNeeded(raw, s.shape, s.choice);
    s.rows = s.choice.rowAxis === undefined ? 1 : s.shape[s.choice.rowAxis];
    s.cols = s.shape[s.choice.colAxis];
    draw();
    showStatus(`${s.path} [${selection || ':'}]: ${buffer.byteLength} bytes in ${(performance.now() - started).toFixed(0)} ms`);
    // What is on screen, for tests and scripts that drive the page.
    viewer.dataset.selection = selection;
    viewer.dataset.axes = `${s.choice.rowAxis ?? ''},${s.choice.colAxis}`;
  } catch (error) {
    if (controller.signal.aborted) return;
    showStatus((error as Error).message, true);
  }
}

/** The limits in use: the slice's own finite range, or the fixed ones typed in. */
function limits(values: Values): [number, number] {
  if (autoLimits.checked) {
    const range = valueRange(values) ?? [0, 1];
    vmin.value = String(range[0]);
    vmax.value = String(range[1]);
    return range;
  }
  return [Number(vmin.value), Number(vmax.value)];
}

function draw(): void {
  const s = state;
  if (!s?.values) return;
  s.range = limits(s.values);
  const map = colourMapSelect.value as ColourMap;
  const isImage = s.choice.rowAxis !== undefined;
  image.parentElement!.hidden = !isImage;
  $('colour-bar').hidden = !isImage;
  plot.hidden = isImage;
  for (const element of document.querySelectorAll<HTMLElement>('.image-only')) element.hidden = !isImage;
  if (!isImage) return drawPlot(s);
  image.width = s.cols;
  image.height = s.rows;
  const context = image.getContext('2d')!;
  const pixels = context.createImageData(s.cols, s.rows);
  paint(s.values, s.range, map, pixels.data);
  context.putImageData(pixels, 0, 0);
  // Fit: the largest whole factor (pixels stay square and sharp) that fits the space left.
  const wrap = image.parentElement!;
  const [room, roomHeight] = [Math.max(256, innerWidth - wrap.getBoundingClientRect().left - 120), Math.max(256, innerHeight * 0.75)];
  const scale = zoom.value === 'fit' ? Math.max(1, Math.floor(Math.min(room / s.cols, roomHeight / s.rows))) : Number(zoom.value);
  image.style.width = `${s.cols * scale}px`;
  image.style.height = `${s.rows * scale}px`;
  const bar = $<HTMLCanvasElement>('bar');
  const barContext = bar.getContext('2d')!;
  barContext.putImageData(new ImageData(colourBar(map, bar.width, bar.height), bar.width, bar.height), 0, 0);
  $('bar-min').textContent = formatValue(s.range[0]);
  $('bar-max').textContent = formatValue(s.range[1]);
}

const PLOT = { left: 70, top: 16, right: 16, bottom: 36 };

function drawPlot(s: ViewState): void {
  plot.width = Math.max(320, Math.min(960, viewer.clientWidth - 8));
  const context = plot.getContext('2d')!;
  const [w, h] = [plot.width - PLOT.left - PLOT.right, plot.height - PLOT.top - PLOT.bottom];
  const values = s.values!;
  const [lo, hi] = s.range[1] > s.range[0] ? s.range : [s.range[0] - 1, s.range[0] + 1];
  const n = values.length;
  const x = (i: number) => PLOT.left + (n > 1 ? (i / (n - 1)) * w : w / 2);
  const y = (v: number) => PLOT.top + h - ((Math.max(lo, Math.min(hi, v)) - lo) / (hi - lo)) * h;
  context.clearRect(0, 0, plot.width, plot.height);
  context.strokeStyle = '#999';
  context.strokeRect(PLOT.left, PLOT.top, w, h);
  context.fillStyle = '#222';
  context.font = '12px sans-serif';
  context.textAlign = 'right';
  context.fillText(formatValue(hi), PLOT.left - 6, PLOT.top + 10);
  context.fillText(formatValue(lo), PLOT.left - 6, PLOT.top + h);
  context.textAlign = 'left';
  context.fillText('0', PLOT.left, PLOT.top + h + 16);
  context.textAlign = 'right';
  context.fillText(String(n - 1), PLOT.left + w, PLOT.top + h + 16);
  context.strokeStyle = '#1f77b4';
  context.lineWidth = 1.5;
  context.beginPath();
  let drawing = false;
  for (let i = 0; i < n; i++) {
    const v = Number(values[i]);
    if (Number.isNaN(v)) { drawing = false; continue; }
    if (drawing) context.lineTo(x(i), y(v));
    else context.moveTo(x(i), y(v));
    drawing = true;
  }
  context.stroke();
}

/** The dataset coordinates and value under the pointer. */
function showCursor(event: MouseEvent, canvas: HTMLCanvasElement): void {
  const s = state;
  if (!s?.values) return;
  const box = canvas.getBoundingClientRect();
  let row = 0;
  let col: number;
  if (s.choice.rowAxis !== undefined) {
    col = Math.floor(((event.clientX - box.left) / box.width) * s.cols);
    row = Math.floor(((event.clientY - box.top) / box.height) * s.rows);
  } else {
    const w = plot.width - PLOT.left - PLOT.right;
    col = Math.round((((event.clientX - box.left) * (plot.width / box.width) - PLOT.left) / w) * (s.cols - 1));
  }
  if (col < 0 || col >= s.cols || row < 0 || row >= s.rows) return;
  const where = s.shape.map((_, axis) => (axis === s.choice.rowAxis ? row : axis === s.choice.colAxis ? col : s.choice.indices[axis]));
  cursor.textContent = `[${where.join(', ')}] = ${formatValue(Number(s.values[row * s.cols + col]))}`;
}

image.addEventListener('mousemove', (e) => showCursor(e, image));
plot.addEventListener('mousemove', (e) => showCursor(e, plot));
image.addEventListener('wheel', (event) => {
  // The wheel zooms by powers of two (with ctrl, as browsers zoom pages, it is left alone).
  if (event.ctrlKey) return;
  event.preventDefault();
  const current = zoom.value === 'fit' ? Number.parseFloat(image.style.width) / image.width : Number(zoom.value);
  const steps = ['0.5', '1', '2', '4', '8', '16'];
  const at = steps.findIndex((z) => Number(z) >= current);
  zoom.value = steps[Math.max(0, Math.min(steps.length - 1, (at < 0 ? steps.length - 1 : at) + (event.deltaY < 0 ? 1 : -1)))];
  draw();
}, { passive: false });
for (const control of [colourMapSelect, zoom]) control.addEventListener('change', draw);
autoLimits.addEventListener('change', () => {
  vmin.disabled = vmax.disabled = autoLimits.checked;
  draw();
});
for (const input of [vmin, vmax]) input.addEventListener('input', draw);

// ---- start ---------------------------------------------------------------------------------

async function start(): Promise<void> {
  const info = (await (await fetch('dosna.json')).json()) as { file: string; backend: string; engine: string };
  file = info.file;
  $('file').textContent = `${info.file} (${info.backend} backend, ${info.engine} engine)`;
  const root = document.createElement('ul');
  $('tree').replaceChildren(root);
  await fillGroup('/', root);
  showStatus('ready');
}

start().catch((error: unknown) => showStatus((error as Error).message, true));
