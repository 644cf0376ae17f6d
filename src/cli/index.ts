export { CommandLineError } from './errors.ts';
export { helpText, versionText, packageVersion } from './help.ts';
export { parseKeyval, type KeyvalNode, type KeyvalTree } from './keyval.ts';
export { parseQemuOpts } from './qemu-opts.ts';
export { parseCommandLine } from './parse.ts';
export type { BlockdevSpec, CommandLine, DeviceSpec, DriveSpec, MachineSpec, MonitorEndpoint, MonitorSpec, ObjectSpec } from './types.ts';
