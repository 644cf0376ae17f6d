import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh secret for WebSocket clients: 256 random bits, URL-safe. */
export function newWebSocketToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/**
 * Where the token goes when the configuration names no file: a directory only
 * this user may enter ($XDG_RUNTIME_DIR/qblockd, else <tmpdir>/qblockd-<uid>),
 * one file per listening port.
 */
export function defaultTokenPath(port: number): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  const dir = runtime ? path.join(runtime, 'qblockd') : path.join(os.tmpdir(), `qblockd-${process.getuid?.() ?? 'user'}`);
  ensurePrivateDirectory(dir);
  return path.join(dir, `websocket-${port}.token`);
}

/** Creates `dir` 0700, or checks that an existing one is a real directory of ours that nobody else can use. */
function ensurePrivateDirectory(dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const stat = fs.lstatSync(dir);
  const uid = process.getuid?.();
  if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o077) !== 0) {
    throw new Error(`WebSocket token directory ${dir} must be a directory owned by this user with mode 0700`);
  }
}

/**
 * Writes the token to a new file readable by the owner alone, then renames it
 * into place: a reader never sees it half written, and whatever was at `file`
 * (a stale token, or a link planted by someone else) is replaced, never followed.
 */
export function writeTokenFile(file: string, token: string): void {
  const temporary = `${file}.${process.pid}.${crypto.randomBytes(6).toString('hex')}`;
  const fd = fs.openSync(temporary, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeSync(fd, token + '\n');
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temporary, file);
}
