import type { BlockDeviceInfo, BlockInfo, ImageInfo } from '../schema/generated/qapi-types.ts';

/**
 * `info block [-n] [-v] [device]` as QEMU 7.2 prints it: each BlockBackend (query-block), or with
 * -n each named node (query-named-block-nodes), one paragraph each, blank lines between; -v adds
 * the image chain of each.
 */
export function infoBlock(backends: BlockInfo[], nodes: BlockDeviceInfo[], flags: { namedNodes: boolean; verbose: boolean }, device?: string): string {
  let text = '';
  if (!flags.namedNodes) {
    text = listing(backends, (info) => info.device, (info) => describe(info, info.inserted, flags.verbose), device);
    // A name no BlockBackend has may still be a node's.
    if (device === undefined || text !== '') return text;
  }
  return text + listing(nodes, (node) => node['node-name'] ?? '', (node) => describe(undefined, node, flags.verbose), device);
}

/** QEMU separates entries with a blank line before every one but the list's first, printed or not. */
function listing<T>(entries: T[], nameOf: (entry: T) => string, print: (entry: T) => string, device?: string): string {
  return entries
    .map((entry, index) => (device === undefined || nameOf(entry) === device ? (index > 0 ? '\n' : '') + print(entry) : ''))
    .join('');
}

function describe(info: BlockInfo | undefined, inserted: BlockDeviceInfo | undefined, verbose: boolean): string {
  let text = info?.device ? info.device + (inserted?.['node-name'] ? ` (${inserted['node-name']})` : '') : (inserted?.['node-name'] ?? info?.qdev ?? '<anonymous>');
  text += inserted ? `: ${inserted.file} (${inserted.drv}${inserted.ro ? ', read-only' : ''}${inserted.encrypted ? ', encrypted' : ''})\n` : ': [not inserted]\n';
  if (info?.qdev) text += `    Attached to:      ${info.qdev}\n`;
  if (info?.['io-status'] && info['io-status'] !== 'ok') text += `    I/O status:       ${info['io-status']}\n`;
  if (info?.removable) text += `    Removable device: ${info.locked ? '' : 'not '}locked, tray closed\n`;
  if (!inserted) return text;
  const { cache } = inserted;
  text += `    Cache mode:       ${cache.writeback ? 'writeback' : 'writethrough'}${cache.direct ? ', direct' : ''}${cache['no-flush'] ? ', ignore flushes' : ''}\n`;
  if (inserted.detect_zeroes !== 'off') text += `    Detect zeroes:    ${inserted.detect_zeroes}\n`;
  if (!verbose) return text;
  text += '\nImages:\n';
  for (let image: ImageInfo | undefined = inserted.image; image; image = image['backing-image']) text += describeImage(image);
  return text;
}

/** One image of the chain, as qemu-img info's human output prints it. */
function describeImage(image: ImageInfo): string {
  const actual = image['actual-size'];
  let text =
    `image: ${image.filename}\nfile format: ${image.format}\n` +
    `virtual size: ${sizeToString(Number(image['virtual-size']))} (${image['virtual-size']} bytes)\n` +
    `disk size: ${actual === undefined ? 'unavailable' : sizeToString(Number(actual))}\n`;
  if (image['cluster-size'] !== undefined) text += `cluster_size: ${image['cluster-size']}\n`;
  if (image['dirty-flag']) text += 'cleanly shut down: no\n';
  const specific = image['format-specific'] as { data?: unknown } | undefined;
  if (specific) text += 'Format specific information:\n' + dumpValue(specific.data, 1);
  return text;
}

/** QEMU's dump of a QAPI value: "key: value" lines (dashes in keys become spaces), lists as "[i]:", four spaces a level. */
function dumpValue(value: unknown, depth: number): string {
  const entries: Array<[string, unknown]> = Array.isArray(value)
    ? value.map((element, index) => [`[${index}]`, element])
    : Object.entries(value as Record<string, unknown>).map(([key, element]) => [key.replaceAll('-', ' '), element]);
  return entries
    .map(([label, element]) => {
      const indent = ' '.repeat(depth * 4);
      return typeof element === 'object' && element !== null ? `${indent}${label}:\n${dumpValue(element, depth + 1)}` : `${indent}${label}: ${String(element)}\n`;
    })
    .join('');
}

/** size_to_str: three significant digits (printf %0.3g) in the binary unit that keeps them below 1000. */
function sizeToString(bytes: number): string {
  let unit = 0;
  while (unit < 6 && bytes / 2 ** (10 * unit) >= 1000) unit++;
  return `${formatG3(bytes / 2 ** (10 * unit))} ${['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'][unit]}B`;
}

/** printf("%0.3g") for 0 <= value < 1000: ties round to even, as glibc rounds exact binary values. */
function formatG3(value: number): string {
  if (value === 0) return '0';
  const decimals = Math.max(0, 2 - Math.floor(Math.log10(value)));
  const scaled = value * 10 ** decimals;
  const floor = Math.floor(scaled);
  const rounded = scaled - floor === 0.5 ? (floor % 2 === 0 ? floor : floor + 1) : Math.round(scaled);
  if (rounded >= 1000) return formatG3(rounded / 10 ** decimals);
  const text = (rounded / 10 ** decimals).toFixed(decimals);
  return decimals > 0 ? text.replace(/\.?0+$/, '') : text;
}
