import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

/** job-* and block-job-*: the same verbs, two lookup families (see block/jobs/job-list.ts). */
export function jobCommands({ jobs }: DaemonServices) {
  return {
    'query-jobs': () => jobs.queryJobs(),
    'query-block-jobs': () => jobs.queryBlockJobs(),
    'job-pause': ({ id }) => (jobs.get(id).userPause(), {}),
    'job-resume': ({ id }) => (jobs.get(id).userResume(), {}),
    'job-cancel': ({ id }) => (jobs.get(id).userCancel(true), {}),
    'job-complete': ({ id }) => (jobs.get(id).userComplete(), {}),
    'job-finalize': ({ id }) => (jobs.get(id).userFinalize(), {}),
    'job-dismiss': ({ id }) => (jobs.get(id).userDismiss(), {}),
    'block-job-pause': ({ device }) => (jobs.getBlockJob(device).userPause(), {}),
    'block-job-resume': ({ device }) => (jobs.getBlockJob(device).userResume(), {}),
    'block-job-cancel': ({ device, force }) => (jobs.getBlockJob(device).userCancelBlockJob(force ?? false), {}),
    'block-job-complete': ({ device }) => (jobs.getBlockJob(device).userComplete(), {}),
    'block-job-finalize': ({ id }) => (jobs.getBlockJob(id).userFinalize(), {}),
    'block-job-dismiss': ({ id }) => (jobs.getBlockJob(id).userDismiss(), {}),
    'block-job-set-speed': ({ device, speed }) => (jobs.getBlockJob(device).setSpeed(Number(speed)), {}),
  } satisfies Partial<CommandTable>;
}
