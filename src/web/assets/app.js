// qblockd's web view. Plain browser JavaScript, served inline with the page: it speaks QMP over
// the daemon's WebSocket, subscribes to qblockd's change notifications (x-qblockd-watch) and
// fetches only what changed: the graph on X_QBLOCKD_GRAPH_CHANGED, one bitmap's dirty map on
// X_QBLOCKD_BITMAP_CHANGED.
'use strict';

const $ = (selector) => document.querySelector(selector);
const SVG = 'http://www.w3.org/2000/svg';
const MAX_EVENTS = 200;

/** One QMP connection: commands get promises, events go to a listener. */
class Qmp {
  constructor(url, onEvent, onClose) {
    this.pending = [];
    this.onEvent = onEvent;
    this.socket = new WebSocket(url);
    this.greeting = new Promise((resolve, reject) => {
      this.socket.onerror = () => reject(new Error('WebSocket error'));
      this.socket.onmessage = (message) => {
        const value = JSON.parse(message.data);
        this.socket.onmessage = (next) => this.receive(JSON.parse(next.data));
        resolve(value);
      };
    });
    this.socket.onclose = onClose;
  }

  receive(message) {
    if ('event' in message) return this.onEvent(message);
    const waiter = this.pending.shift();
    if (waiter) waiter(message);
  }

  /** Sends a request object; resolves with the whole reply ({return} or {error}). */
  request(request) {
    return new Promise((resolve) => {
      this.pending.push(resolve);
      this.socket.send(JSON.stringify(request));
    });
  }

  /** Runs a command; resolves with its return value, rejects with its error text. */
  async execute(command, args) {
    const reply = await this.request(args ? { execute: command, arguments: args } : { execute: command });
    if ('error' in reply) throw new Error(`${reply.error.class}: ${reply.error.desc}`);
    return reply.return;
  }
}

const state = {
  qmp: null,
  commands: new Set(),
  graph: [],
  /** key "node/name" -> { card, canvas, count, range: {offset, length} | null, busy, stale } */
  maps: new Map(),
  refreshing: false,
  refreshAgain: false,
};

function formatBytes(bytes) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1).replace(/\.0+$/, '')} ${units[unit]}`;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function logEvent(event) {
  const list = $('#events');
  const time = new Date(event.timestamp.seconds * 1000 + event.timestamp.microseconds / 1000);
  const item = element('li', {}, element('time', {}, time.toISOString().slice(11, 23)), ' ', element('b', {}, event.event));
  if (event.data) item.append(' ', element('code', {}, JSON.stringify(event.data)));
  list.prepend(item);
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
}

function onEvent(event) {
  logEvent(event);
  if (event.event === 'X_QBLOCKD_BITMAP_CHANGED') {
    const key = `${event.data.node}/${event.data.name}`;
    const map = state.maps.get(key);
    if (map) {
      map.countText.textContent = formatBytes(event.data.count);
      map.card.dataset.count = String(event.data.count);
      fetchMap(key);
    }
  } else if (event.event === 'X_QBLOCKD_GRAPH_CHANGED' || event.event.startsWith('JOB_') || event.event.startsWith('BLOCK_JOB_')) {
    refresh();
  }
}

/** Fetches the whole view once; called again on every graph change, coalesced. */
async function refresh() {
  if (state.refreshing) return void (state.refreshAgain = true);
  state.refreshing = true;
  try {
    const qmp = state.qmp;
    const [graph, exports, clients, jobs] = await Promise.all([
      qmp.execute('x-qblockd-query-graph'),
      qmp.execute('x-qblockd-query-exports'),
      qmp.execute('x-qblockd-query-clients'),
      state.commands.has('query-jobs') ? qmp.execute('query-jobs') : Promise.resolve([]),
    ]);
    state.graph = graph;
    drawGraph(graph, exports, jobs);
    drawBitmaps(graph);
    drawJobs(jobs);
    drawExports(exports, clients);
  } catch (error) {
    consoleLine('error', String(error));
  } finally {
    state.refreshing = false;
    if (state.refreshAgain) {
      state.refreshAgain = false;
      refresh();
    }
  }
}

function drawGraph(nodes, exports, jobs) {
  const svg = $('#graph');
  svg.replaceChildren();
  const depth = new Map();
  const childOf = new Set(nodes.flatMap((node) => node.children));
  const visit = (name, level) => {
    if ((depth.get(name) ?? -1) >= level) return;
    depth.set(name, level);
    const node = nodes.find((candidate) => candidate['node-name'] === name);
    for (const child of node?.children ?? []) visit(child, level + 1);
  };
  for (const node of nodes) if (!childOf.has(node['node-name'])) visit(node['node-name'], 1);
  const users = [
    ...nodes.filter((node) => node.device).map((node) => ({ label: node.device, kind: 'device', target: node['node-name'] })),
    ...exports.map((exported) => ({ label: exported.id, kind: `${exported.type} export`, target: exported['node-name'] })),
    ...jobs.map((job) => ({ label: job.id, kind: `${job.type} job`, target: null })),
  ];
  const columns = [users.map((user) => ({ ...user, id: `user:${user.kind}:${user.label}` }))];
  for (const node of nodes) {
    const level = depth.get(node['node-name']) ?? 1;
    (columns[level] ??= []).push({ id: node['node-name'], label: node['node-name'], kind: `${node.driver} · ${formatBytes(node.size)}`, node });
  }
  const boxWidth = 190;
  const boxHeight = 46;
  const gapX = 70;
  const gapY = 14;
  const positions = new Map();
  const shown = columns.filter((column) => column && column.length > 0);
  shown.forEach((column, x) => column.forEach((item, y) => positions.set(item.id, { x: 10 + x * (boxWidth + gapX), y: 10 + y * (boxHeight + gapY), item })));
  const width = 20 + shown.length * (boxWidth + gapX);
  const height = 20 + Math.max(1, ...shown.map((column) => column.length)) * (boxHeight + gapY);
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('height', String(height));
  svg.setAttribute('width', String(width));
  const line = (from, to) => {
    const path = document.createElementNS(SVG, 'path');
    const x1 = from.x + boxWidth;
    const y1 = from.y + boxHeight / 2;
    const x2 = to.x;
    const y2 = to.y + boxHeight / 2;
    path.setAttribute('d', `M${x1},${y1} C${x1 + gapX / 2},${y1} ${x2 - gapX / 2},${y2} ${x2},${y2}`);
    path.setAttribute('class', 'edge');
    svg.append(path);
  };
  for (const { item } of positions.values()) {
    const from = positions.get(item.id);
    if (item.target) line(from, positions.get(item.target));
    for (const child of item.node?.children ?? []) if (positions.has(child)) line(from, positions.get(child));
  }
  for (const { x, y, item } of positions.values()) {
    const group = document.createElementNS(SVG, 'g');
    group.setAttribute('class', item.node ? 'node' : 'user');
    group.setAttribute('data-name', item.id);
    const rect = document.createElementNS(SVG, 'rect');
    Object.entries({ x, y, width: boxWidth, height: boxHeight, rx: 6 }).forEach(([key, value]) => rect.setAttribute(key, String(value)));
    const title = document.createElementNS(SVG, 'text');
    title.setAttribute('x', String(x + 10));
    title.setAttribute('y', String(y + 19));
    title.textContent = item.label;
    const sub = document.createElementNS(SVG, 'text');
    sub.setAttribute('x', String(x + 10));
    sub.setAttribute('y', String(y + 36));
    sub.setAttribute('class', 'sub');
    const bitmaps = item.node?.bitmaps.length ?? 0;
    sub.textContent = item.kind + (bitmaps ? ` · ${bitmaps} bitmap${bitmaps > 1 ? 's' : ''}` : '');
    group.append(rect, title, sub);
    svg.append(group);
  }
}

const FLAGS = ['recording', 'persistent', 'busy', 'readonly', 'inconsistent'];

function drawBitmaps(nodes) {
  const container = $('#bitmaps');
  const seen = new Set();
  for (const node of nodes) {
    for (const bitmap of node.bitmaps) {
      const key = `${node['node-name']}/${bitmap.name}`;
      seen.add(key);
      let map = state.maps.get(key);
      if (!map) {
        map = createBitmapCard(key, node['node-name'], bitmap.name, node.size);
        state.maps.set(key, map);
        container.append(map.card);
      }
      map.flags.replaceChildren(
        ...FLAGS.map((flag) => element('span', { class: `flag ${bitmap[flag] ? 'on' : 'off'}`, 'data-flag': flag }, flag)),
        element('span', { class: 'meta' }, `granularity ${formatBytes(bitmap.granularity)}`),
      );
      map.countText.textContent = formatBytes(bitmap.count);
      // A graph change (a client came, a flag flipped) redraws only the maps whose bits may differ.
      if (map.card.dataset.count !== String(bitmap.count) || !map.drawn) fetchMap(key);
      map.card.dataset.count = String(bitmap.count);
    }
  }
  for (const [key, map] of state.maps) {
    if (!seen.has(key)) {
      map.card.remove();
      state.maps.delete(key);
    }
  }
  if (state.maps.size === 0 && !container.querySelector('.empty')) container.append(element('p', { class: 'empty' }, 'No bitmaps.'));
  if (state.maps.size > 0) container.querySelector('.empty')?.remove();
}

function createBitmapCard(key, nodeName, name, size) {
  const canvas = element('canvas', { height: '56' });
  const countText = element('span', { class: 'count' });
  const rangeText = element('span', { class: 'range' });
  const flags = element('div', { class: 'flags' });
  const card = element(
    'div',
    { class: 'bitmap', 'data-key': key },
    element('div', { class: 'title' }, element('b', {}, name), ` on ${nodeName} · dirty `, countText),
    flags,
    canvas,
    rangeText,
  );
  const map = { card, canvas, countText, rangeText, flags, node: nodeName, name, size, range: null, busy: false, stale: false };
  let dragFrom = null;
  canvas.addEventListener('mousedown', (event) => (dragFrom = event.offsetX));
  canvas.addEventListener('mouseup', (event) => {
    if (dragFrom === null || !map.drawn) return;
    const [a, b] = [dragFrom, event.offsetX].sort((x, y) => x - y);
    dragFrom = null;
    if (b - a < 3) return;
    const { offset, length } = map.drawn;
    const width = canvas.clientWidth;
    const start = offset + Math.floor((a / width) * length);
    const end = offset + Math.ceil((b / width) * length);
    map.range = { offset: start, length: Math.max(1, end - start) };
    fetchMap(key);
  });
  canvas.addEventListener('dblclick', () => {
    map.range = null;
    fetchMap(key);
  });
  return map;
}

/** At most one dirty-map request per bitmap in flight; a change meanwhile asks for one more. */
async function fetchMap(key) {
  const map = state.maps.get(key);
  if (!map) return;
  if (map.busy) return void (map.stale = true);
  map.busy = true;
  const started = performance.now();
  try {
    const width = Math.max(1, Math.min(65535, Math.round(map.canvas.clientWidth * devicePixelRatio)));
    const args = { node: map.node, name: map.name, width, ...(map.range ?? {}) };
    const result = await state.qmp.execute('x-qblockd-dirty-map', args);
    drawMap(map, result, width);
  } catch (error) {
    map.rangeText.textContent = String(error);
  } finally {
    if (!map.stale) map.busy = false;
    else {
      // A map that took the daemon long to draw is asked for again only after as long again
      // (changes meanwhile wait), so a bitmap changing without pause keeps the daemon busy half the time at most.
      setTimeout(() => {
        map.busy = false;
        map.stale = false;
        fetchMap(key);
      }, Math.min(1000, performance.now() - started));
    }
  }
}

function drawMap(map, result, width) {
  const density = Uint8Array.from(atob(result.density), (c) => c.charCodeAt(0));
  const canvas = map.canvas;
  canvas.width = width;
  const height = canvas.height;
  const context = canvas.getContext('2d');
  const image = context.createImageData(width, height);
  for (let x = 0; x < width; x++) {
    const value = density.length === 0 ? 0 : density[Math.min(density.length - 1, Math.floor((x * density.length) / width))];
    // Clean: slate. Dirty: from amber (a few chunks) to red (every chunk).
    const rgb = value === 0 ? [38, 44, 56] : [255, Math.round(200 - (value * 170) / 255), Math.round(60 - (value * 40) / 255)];
    for (let y = 0; y < height; y++) {
      const at = (y * width + x) * 4;
      image.data[at] = rgb[0];
      image.data[at + 1] = rgb[1];
      image.data[at + 2] = rgb[2];
      image.data[at + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
  map.drawn = { offset: result.offset, length: result.length };
  map.card.dataset.dirtyPixels = String(density.filter((value) => value > 0).length);
  const whole = result.offset === 0 && result.length >= map.size;
  map.rangeText.textContent = `${whole ? 'whole disk' : 'zoomed'}: bytes ${formatBytes(result.offset)} – ${formatBytes(result.offset + result.length)}` +
    ` · ${density.length} pixels of ${formatBytes(result.length / Math.max(1, density.length))} each`;
}

function drawJobs(jobs) {
  const body = $('#jobs tbody');
  body.replaceChildren(
    ...jobs.map((job) => {
      const percent = job['total-progress'] > 0 ? (100 * job['current-progress']) / job['total-progress'] : 0;
      const bar = element('progress', { max: '100', value: percent.toFixed(1) });
      return element('tr', {}, element('td', {}, job.id), element('td', {}, job.type), element('td', {}, job.status), element('td', {}, bar, ` ${percent.toFixed(0)}%`));
    }),
  );
  if (jobs.length === 0) body.append(element('tr', {}, element('td', { colspan: '4', class: 'empty' }, 'No jobs.')));
}

function drawExports(exports, clients) {
  const body = $('#exports tbody');
  body.replaceChildren(
    ...exports.map((e) =>
      element('tr', {}, element('td', {}, e.id), element('td', {}, e.type), element('td', {}, e['node-name']),
        element('td', {}, e.name), element('td', {}, String(e.clients))),
    ),
  );
  if (exports.length === 0) body.append(element('tr', {}, element('td', { colspan: '5', class: 'empty' }, 'No exports.')));
  $('#clients tbody').replaceChildren(
    ...clients.map((c) => element('tr', {}, element('td', {}, `#${c.id}`), element('td', {}, c.transport), element('td', {}, c.watching ? 'yes' : 'no'))),
  );
}

function consoleLine(kind, text) {
  const output = $('#console-output');
  output.append(element('div', { class: kind }, text));
  output.scrollTop = output.scrollHeight;
}

/** Raw JSON, or `command key=value ...` (values read as JSON when they parse, else as strings). */
function parseConsoleInput(text) {
  if (text.startsWith('{')) return JSON.parse(text);
  const [command, ...pairs] = text.split(/\s+/);
  if (pairs.length === 0) return { execute: command };
  const args = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 0) throw new Error(`expected key=value, got ${pair}`);
    const raw = pair.slice(at + 1);
    try {
      args[pair.slice(0, at)] = JSON.parse(raw);
    } catch {
      args[pair.slice(0, at)] = raw;
    }
  }
  return { execute: command, arguments: args };
}

function setupConsole() {
  $('#console-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('#console-input');
    const text = input.value.trim();
    if (!text || !state.qmp) return;
    input.value = '';
    let request;
    try {
      request = parseConsoleInput(text);
    } catch (error) {
      return consoleLine('error', String(error));
    }
    consoleLine('request', `> ${JSON.stringify(request)}`);
    const reply = await state.qmp.request(request);
    consoleLine('error' in reply ? 'error' : 'reply', JSON.stringify(reply, null, 2));
  });
}

async function connect() {
  const token = new URLSearchParams(location.search).get('token') ?? '';
  const url = `ws://${location.host}/?token=${encodeURIComponent(token)}`;
  const qmp = new Qmp(url, onEvent, () => {
    $('#status').textContent = 'disconnected';
    $('#status').className = 'status down';
  });
  const greeting = await qmp.greeting;
  const version = greeting.QMP.version;
  $('#version').textContent = `${version.package} · QEMU ${version.qemu.major}.${version.qemu.minor}.${version.qemu.micro}`;
  await qmp.execute('qmp_capabilities');
  state.qmp = qmp;
  state.commands = new Set((await qmp.execute('query-commands')).map((command) => command.name));
  await qmp.execute('x-qblockd-watch');
  $('#status').textContent = 'live';
  $('#status').className = 'status up';
  await refresh();
  document.body.dataset.ready = 'true';
}

setupConsole();
connect().catch((error) => {
  $('#status').textContent = `failed: ${error.message}`;
  $('#status').className = 'status down';
});
