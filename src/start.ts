import { CommandLineError, helpText, parseCommandLine, versionText } from './cli/index.ts';
import { applyCommandLine, loadConfig } from './config/index.ts';
import { formatHelpText } from './block/graph.ts';
import { Daemon } from './daemon.ts';
import { deviceHelpText } from './machine/device-models.ts';
import { createLogger } from './log.ts';

/** Command line -> configuration -> daemon. Every failure is one line on stderr and exit 1. */
async function main(argv: string[]): Promise<void> {
  const commandLine = parseCommandLine(argv);
  if (commandLine.action === 'help') return void process.stdout.write(helpText());
  if (commandLine.action === 'version') return void process.stdout.write(versionText());
  if (commandLine.action === 'device-help') return void process.stdout.write(deviceHelpText());
  if (commandLine.action === 'format-help') return void process.stdout.write(formatHelpText());
  const config = applyCommandLine(loadConfig(commandLine.configFile), commandLine);
  const log = createLogger(config.log);
  const daemon = new Daemon(config, log);
  await daemon.start();
  // A QEMU launch line names its monitors; its stderr carries only what QEMU would print.
  if (commandLine.monitors.length === 0) {
    for (const path of daemon.monitorPaths) process.stderr.write(`qblockd: QMP monitor listening on ${path}\n`);
  }
  if (daemon.webSocketUrl) {
    process.stderr.write(`qblockd: QMP WebSocket listening on ${daemon.webSocketUrl}; token (?token= or Authorization: Bearer) in ${daemon.webSocketTokenFile}\n`);
  }
  if (daemon.webUrl) process.stderr.write(`qblockd: web view at ${daemon.webUrl}\n`);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => {
      daemon.emitEvent('SHUTDOWN', { guest: false, reason: 'host-signal' });
      void daemon.shutdown(signal);
    });
  }
}

/** Runs qblockd with these arguments (without the program name). */
export function start(argv: string[]): void {
  main(argv).catch((error: unknown) => {
    const message = error instanceof CommandLineError || error instanceof Error ? error.message : String(error);
    process.stderr.write(`qblockd: ${message}\n`);
    process.exit(1);
  });
}
