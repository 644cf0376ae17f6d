import { execFileSync, spawnSync } from 'node:child_process';
import { describe, it } from 'vitest';

function installed(binary: string): boolean {
  return spawnSync(binary, ['--version'], { stdio: 'ignore' }).status === 0;
}

export const hasQemuImg = installed('qemu-img');
export const hasQemuSystem = installed('qemu-system-x86_64');
/** libnbd's tools (Debian: libnbd-bin). */
export const hasNbdTools = installed('nbdinfo') && installed('nbdcopy');

const required = Boolean(process.env.CI || process.env.QBLOCKD_REQUIRE_INTEROP);

/**
 * An interop suite needs Debian's qemu-utils / qemu-system-x86. Without them its
 * body is never run (collecting it would already call the tools): the suite is
 * reported by name as not run — except in CI, where missing tools fail it.
 */
export function describeInterop(name: string, needs: { qemuImg?: boolean; qemuSystem?: boolean; nbdTools?: boolean }, body: () => void): void {
  const missing = [
    needs.qemuImg && !hasQemuImg && 'qemu-img',
    needs.qemuSystem && !hasQemuSystem && 'qemu-system-x86_64',
    needs.nbdTools && !hasNbdTools && 'nbdinfo/nbdcopy',
  ].filter(Boolean);
  if (missing.length > 0 && !required) {
    console.warn(`interop: not run: ${name}: ${missing.join(', ')} not installed`);
    describe(name, () => it.skip(`not run: ${missing.join(', ')} not installed`, () => {}));
    return;
  }
  describe(name, body);
}

export function qemuImg(...args: string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8' });
}

export function qemuImgCheck(path: string): { corruptions: number; leaks: number; status: number } {
  const result = spawnSync('qemu-img', ['check', '--output=json', path], { encoding: 'utf8' });
  const report = result.stdout.trim() ? JSON.parse(result.stdout) : {};
  return { corruptions: report.corruptions ?? 0, leaks: report.leaks ?? 0, status: result.status ?? -1 };
}

export function qemuImgBitmaps(path: string): Array<{ name: string; granularity: number; flags: string[] }> {
  const info = JSON.parse(qemuImg('info', '--output=json', '-U', path));
  return info['format-specific']?.data?.bitmaps ?? [];
}
