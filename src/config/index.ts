export { loadConfig } from './load.ts';
export { applyCommandLine } from './merge.ts';
export { ConfigError, type CommandLineMerge, type DaemonConfig, type LogLevel } from './types.ts';
