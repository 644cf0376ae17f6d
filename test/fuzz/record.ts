/**
 * Adds findings of a fuzz report to the corpus, with QEMU's recorded replies:
 *   node --import tsx test/fuzz/record.ts REPORT ID [--open AREA] [--name TEXT]
 * Only request and raw cases (qcow2 cases need their generated image).
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { CORPUS_FILE, readCorpus, type CorpusEntry } from './corpus.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { open: { type: 'string' }, name: { type: 'string' } } });
const [reportFile, id] = positionals;
if (!reportFile || !id) throw new Error('usage: record.ts REPORT ID [--open AREA] [--name TEXT]');
const report = JSON.parse(fs.readFileSync(reportFile, 'utf8'));
const finding = report.findings.find((candidate: { id: string }) => candidate.id === id);
if (!finding) throw new Error(`${reportFile}: no finding ${id}`);
if (finding.kind === 'qcow2') throw new Error('qcow2 cases need their image: pin them with an iotest instead');
if (!finding.qemu?.survived || finding.qemu.hung) throw new Error(`${id}: QEMU did not answer; nothing to record`);
const entry: CorpusEntry = {
  name: values.name ?? finding.description,
  found: id,
  ...(values.open ? { open: values.open } : {}),
  negotiate: finding.negotiate,
  ...(finding.inputBase64 ? { inputBase64: finding.inputBase64 } : { input: finding.input }),
  qemu: finding.qemu.lines,
  ...(finding.what.includes('state afterwards differs') ? { qemuState: finding.qemu.state } : {}),
};
const corpus = fs.existsSync(CORPUS_FILE) ? readCorpus() : [];
corpus.push(entry);
fs.writeFileSync(CORPUS_FILE, JSON.stringify(corpus, null, 1) + '\n');
console.log(`recorded ${id} (${corpus.length} entries)`);
