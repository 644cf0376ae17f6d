import { enterSteps, type CoroutineSteps } from '../coroutine-steps.ts';
import type { Job, JobDriver } from './job.ts';
import type { JobList } from './job-list.ts';

/**
 * blockdev-create's job: one unit of progress, the creation itself (counted
 * done whether it succeeded or not). QEMU creates it with auto-finalize on and
 * auto-dismiss off, so it waits in `concluded` (with its error, if any) until
 * job-dismiss.
 */
class CreateJob implements JobDriver {
  readonly type = 'create';

  constructor(private readonly work: () => CoroutineSteps) {}

  run(job: Job): number | Promise<number> {
    const done = () => (job.progressCurrent = 1);
    let entered;
    try {
      entered = enterSteps(this.work());
    } catch (error) {
      done();
      throw error;
    }
    if (!(entered instanceof Promise)) return (done(), 0);
    return entered.finally(done).then(() => 0);
  }
}

export function startCreateJob(jobs: JobList, id: string, work: () => CoroutineSteps): Job {
  const job = jobs.create(id, new CreateJob(work), { autoFinalize: true, autoDismiss: false });
  job.progressTotal = 1;
  job.start();
  return job;
}
