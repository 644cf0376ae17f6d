import fs from 'node:fs';
import path from 'node:path';
import type { FuzzCase } from './cases.ts';

/**
 * A divergence the fuzzer found, kept as a regression test: the bytes sent and the
 * lines QEMU 7.2 answered (normalised as the fuzzer normalises them). `open` names
 * whose area the fix belongs to while qblockd still answers differently.
 */
export interface CorpusEntry {
  name: string;
  found: string;
  open?: string;
  negotiate: boolean;
  input?: string;
  inputBase64?: string;
  qemu: string[];
  /** query-named-block-nodes and query-block-exports afterwards, when the divergence was in the state. */
  qemuState?: string[];
}

export const CORPUS_FILE = path.join(import.meta.dirname, 'corpus.json');

export function readCorpus(): CorpusEntry[] {
  return JSON.parse(fs.readFileSync(CORPUS_FILE, 'utf8'));
}

export function corpusCase(entry: CorpusEntry): FuzzCase {
  const input = entry.inputBase64 !== undefined ? Buffer.from(entry.inputBase64, 'base64') : Buffer.from(entry.input ?? '', 'utf8');
  return { id: entry.found, kind: 'request', description: entry.name, negotiate: entry.negotiate, input };
}
