import type { Job, JobDriver } from './job.ts';
import type { JobList } from './job-list.ts';

/**
 * blockdev-create's job: one unit of progress, the creation itself. QEMU
 * creates it with auto-finalize on and auto-dismiss off, so it waits in
 * `concluded` (with its error, if any) until job-dismiss.
 */
class CreateJob implements JobDriver {
  readonly type = 'create';

  constructor(private readonly work: () => void) {}

  async run(job: Job): Promise<number> {
    try {
      this.work();
    } finally {
      job.progressCurrent = 1;
    }
    return 0;
  }
}

export function startCreateJob(jobs: JobList, id: string, work: () => void): Job {
  const job = jobs.create(id, new CreateJob(work), { autoFinalize: true, autoDismiss: false });
  job.progressTotal = 1;
  job.start();
  return job;
}
