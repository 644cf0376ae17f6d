import type { RunState } from '../block/run-state.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import type { StatusInfo } from '../schema/generated/qapi-types.ts';
import type { DaemonServices } from './services.ts';

export function statusInfo(runState: RunState): StatusInfo {
  return { running: runState.state === 'running', singlestep: false, status: runState.state };
}

export function runStateCommands({ runState }: DaemonServices) {
  return {
    'query-status': () => statusInfo(runState),
    'query-name': () => (runState.name === undefined ? {} : { name: runState.name }),
    stop: () => (runState.stop(), {}),
    cont: () => (runState.cont(), {}),
  } satisfies Partial<CommandTable>;
}
