import fs from 'node:fs';
import { describe } from 'vitest';

/** Debian's chromium package; the browser tests never download one. */
export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = fs.existsSync(CHROMIUM);

/**
 * A suite that drives the system Chromium. Without it the suite is named and
 * not run — except in CI (CI=1 or QBLOCKD_REQUIRE_INTEROP=1), where it must run.
 */
export function describeBrowser(name: string, body: () => void): void {
  const required = Boolean(process.env.CI || process.env.QBLOCKD_REQUIRE_INTEROP);
  if (!hasChromium && !required) {
    console.warn(`browser: not run: ${name}: ${CHROMIUM} not installed (apt-get install chromium)`);
    describe.skip(name, body);
    return;
  }
  describe(name, body);
}

/**
 * Headless, offline, nothing kept: nothing reaches the network but the daemon under test.
 * The fresh profile directory goes to launchPersistentContext, which passes it as --user-data-dir.
 */
export function chromiumArguments(): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ];
}
