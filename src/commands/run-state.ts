import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

export function runStateCommands({ runState }: DaemonServices) {
  return {
    'query-status': () => ({ running: runState.state === 'running', singlestep: false, status: runState.state }),
    'query-name': () => (runState.name === undefined ? {} : { name: runState.name }),
    stop: () => (runState.stop(), {}),
    cont: () => (runState.cont(), {}),
  } satisfies Partial<CommandTable>;
}
