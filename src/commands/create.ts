import { imageCreator } from '../block/image-create.ts';
import { startCreateJob } from '../block/jobs/create.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';
import { resizeContext } from './block-nodes.ts';

export function createCommands({ graph, jobs, exports }: DaemonServices) {
  return {
    'blockdev-create': ({ 'job-id': id, options }) => (startCreateJob(jobs, id, imageCreator(graph, options, resizeContext(exports).conflict)), {}),
  } satisfies Partial<CommandTable>;
}
