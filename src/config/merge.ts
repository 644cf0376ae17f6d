import type { CommandLine } from '../cli/index.ts';
import type { DaemonConfig } from './types.ts';

/**
 * Adds the command line's monitors, blockdevs and drives to the
 * configuration's. With commandLine "replace" (the built-in default), a
 * command-line monitor drops the configured monitors, and a command line
 * naming any monitor, blockdev or drive drops the configured nodes, so that a
 * QEMU launch line gets exactly the monitors and nodes QEMU would have.
 */
export function applyCommandLine(config: DaemonConfig, cl: CommandLine): DaemonConfig {
  const replace = config.commandLine === 'replace';
  const launchLine = cl.monitors.length + cl.blockdevs.length + cl.drives.length > 0;
  const keepMonitors = !(replace && cl.monitors.length > 0);
  const keepNodes = !(replace && launchLine);
  return {
    ...config,
    web: config.web || cl.web,
    monitors: [...(keepMonitors ? config.monitors : []), ...cl.monitors],
    blockdevs: [...(keepNodes ? config.blockdevs : []), ...cl.blockdevs],
    drives: [...(keepNodes ? config.drives : []), ...cl.drives],
    ...(cl.startPaused ? { startPaused: true } : {}),
    ...(cl.name !== undefined ? { name: cl.name } : {}),
  };
}
