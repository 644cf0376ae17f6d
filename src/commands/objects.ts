import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

/** object-add / object-del: the user-creatable objects (throttle groups). */
export function objectCommands({ graph }: DaemonServices) {
  return {
    'object-add'(args) {
      graph.objects.add(args);
      return {};
    },
    'object-del'(args) {
      graph.objects.remove(args.id);
      return {};
    },
  } satisfies Partial<CommandTable>;
}
