import packageJson from '../../package.json' with { type: 'json' };
import { OPTION_RULES } from './options.ts';
const HELP_INDENT = ' '.repeat(8);

/** qblockd's own version, from package.json. */
export function packageVersion(): string {
  return packageJson.version;
}

export function versionText(): string {
  return `qblockd ${packageVersion()} (QEMU 7.2 QMP emulation)\n`;
}

/** Usage text listing every supported option, generated from the option table. */
export function helpText(): string {
  const lines = OPTION_RULES.map(({ usage, help }) => `  ${usage}\n${HELP_INDENT}${help}`);
  return [
    'Usage: qblockd [options]',
    'A QMP daemon emulating the block layer and dirty bitmaps of QEMU 7.2.',
    'Accepts the qemu-storage-daemon and qemu-system-x86_64 spellings of these options',
    '(one or two dashes; "--option=VALUE" or "-option VALUE"; ",," escapes a comma in a value):',
    '',
    ...lines,
    '',
    'Without --config, the built-in configuration (config/default.json) applies.',
    '',
  ].join('\n');
}
