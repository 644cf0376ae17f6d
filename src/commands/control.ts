import { QmpError } from '../qmp/errors.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

export function controlCommands(services: DaemonServices) {
  return {
    qmp_capabilities(args, session) {
      if (session.negotiated) {
        throw new QmpError('Capabilities negotiation is already complete, command ignored', 'CommandNotFound');
      }
      session.oobEnabled = (args.enable ?? []).includes('oob');
      session.negotiated = true;
      return {};
    },
    'query-version': () => ({ qemu: { ...services.version.qemu }, package: services.version.package }),
    'query-commands': (_args, session) => services.schema.commandNames(services.watchers.schemaView(session)).map((name) => ({ name })),
    'query-qmp-schema': (_args, session) => services.schema.introspect(services.watchers.schemaView(session)),
    quit() {
      services.emitEvent('SHUTDOWN', { guest: false, reason: 'host-qmp-quit' });
      services.requestShutdown('host-qmp-quit');
      return {};
    },
  } satisfies Partial<CommandTable>;
}
