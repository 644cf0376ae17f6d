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
  const launchLine = cl.monitors.length + cl.blockdevs.length + cl.drives.length + cl.devices.length + cl.objects.length > 0;
  const keepMonitors = !(replace && cl.monitors.length > 0);
  const keepNodes = !(replace && launchLine);
  const merged: DaemonConfig = {
    ...config,
    web: config.web || cl.web,
    monitors: [...(keepMonitors ? config.monitors : []), ...cl.monitors],
    blockdevs: [...(keepNodes ? config.blockdevs : []), ...cl.blockdevs],
    drives: [...(keepNodes ? config.drives : []), ...cl.drives],
    ...(cl.startPaused ? { startPaused: true } : {}),
    ...(cl.name !== undefined ? { name: cl.name } : {}),
    devices: cl.devices,
    objects: cl.objects,
    log: { ...config.log, ...quietLaunchLine(cl), ...cl.log } as DaemonConfig['log'],
  };
  if (cl.machine) merged.machine = cl.machine;
  if (cl.qtest) merged.qtest = cl.qtest;
  if (cl.qtestLog !== undefined) merged.qtestLog = cl.qtestLog;
  return merged;
}

/**
 * A QEMU launch line (monitors on the command line, no --config) writes to stdout and
 * stderr only what QEMU would: harnesses compare that output. qblockd's own log is then
 * off unless --log-level / --log-file ask for it.
 */
function quietLaunchLine(cl: CommandLine): Partial<DaemonConfig['log']> {
  return cl.monitors.length > 0 && cl.configFile === undefined && cl.log === undefined ? { level: 'silent' } : {};
}
