import { describe, expect, it } from 'vitest';
import { QtestSession } from '../../../src/machine/qtest.ts';

describe('qtest text protocol (the part block tests use)', () => {
  it('owns the virtual clock with the qtest accelerator: clock_step [NS], clock_set NS', () => {
    const session = new QtestSession(true, undefined);
    expect(session.handle('clock_step')).toBe('OK 0\n');
    expect(session.handle('clock_step 100')).toBe('OK 100\n');
    expect(session.handle('clock_set 5000')).toBe('OK 5000\n');
    expect(session.handle('clock_set 10')).toBe('OK 5000\n');
    expect(session.handle('clock_step 0x10')).toBe('OK 5016\n');
  });

  it("answers as QEMU 7.2 does without it (observed with -accel tcg): every command unknown", () => {
    const session = new QtestSession(false, undefined);
    expect(session.handle('clock_step')).toBe("FAIL Unknown command 'clock_step'\n");
    expect(session.handle('bogus 1 2')).toBe("FAIL Unknown command 'bogus'\n");
  });

  it("logs the exchange in QEMU's format", () => {
    const lines: string[] = [];
    const session = new QtestSession(false, (line) => lines.push(line));
    session.handle('bogus  a');
    session.close();
    expect(lines.map((line) => line.replace(/[0-9]+\.[0-9]{6}/, 'T'))).toEqual([
      '[I T] OPENED\n',
      '[R +T] bogus a\n',
      "[S +T] FAIL Unknown command 'bogus'\n",
      '[I +T] CLOSED\n',
    ]);
  });
});
