import type { BlockDeviceInfo, BlockInfo } from '../schema/generated/qapi-types.ts';

/**
 * `info block [-n] [device]` as QEMU 7.2 prints it: each BlockBackend (query-block), or with
 * -n each named node (query-named-block-nodes), one paragraph each, blank lines between.
 */
export function infoBlock(backends: BlockInfo[], nodes: BlockDeviceInfo[], namedNodes: boolean, device?: string): string {
  let text = '';
  if (!namedNodes) {
    text = listing(backends, (info) => info.device, (info) => describe(info, info.inserted), device);
    // A name no BlockBackend has may still be a node's.
    if (device === undefined || text !== '') return text;
  }
  return text + listing(nodes, (node) => node['node-name'] ?? '', (node) => describe(undefined, node), device);
}

/** QEMU separates entries with a blank line before every one but the list's first, printed or not. */
function listing<T>(entries: T[], nameOf: (entry: T) => string, print: (entry: T) => string, device?: string): string {
  return entries
    .map((entry, index) => (device === undefined || nameOf(entry) === device ? (index > 0 ? '\n' : '') + print(entry) : ''))
    .join('');
}

function describe(info: BlockInfo | undefined, inserted: BlockDeviceInfo | undefined): string {
  let text = info?.device ? info.device + (inserted?.['node-name'] ? ` (${inserted['node-name']})` : '') : (inserted?.['node-name'] ?? info?.qdev ?? '<anonymous>');
  text += inserted ? `: ${inserted.file} (${inserted.drv}${inserted.ro ? ', read-only' : ''}${inserted.encrypted ? ', encrypted' : ''})\n` : ': [not inserted]\n';
  if (info?.qdev) text += `    Attached to:      ${info.qdev}\n`;
  if (info?.['io-status'] && info['io-status'] !== 'ok') text += `    I/O status:       ${info['io-status']}\n`;
  if (info?.removable) text += `    Removable device: ${info.locked ? '' : 'not '}locked, tray closed\n`;
  if (!inserted) return text;
  const { cache } = inserted;
  text += `    Cache mode:       ${cache.writeback ? 'writeback' : 'writethrough'}${cache.direct ? ', direct' : ''}${cache['no-flush'] ? ', ignore flushes' : ''}\n`;
  if (inserted.detect_zeroes !== 'off') text += `    Detect zeroes:    ${inserted.detect_zeroes}\n`;
  return text;
}
