/**
 * Differential fuzzing of qblockd against QEMU 7.2:
 *   npm run fuzz -- --seed N --count M [--against qemu] [--report FILE] [--timeout MS] [--known FILE]
 * Without --against, qblockd runs alone and must neither die nor hang. Exits 1 on any difference
 * but those --known lists (never a crash or hang of qblockd), and on a listed one that is gone.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { generateCases, type FuzzCase } from './cases.ts';
import { Target, type Outcome } from './target.ts';
import { KNOWN_QEMU_CRASHES, judge, type Verdict } from './verdict.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    count: { type: 'string', default: '1000' },
    against: { type: 'string' },
    report: { type: 'string', default: 'fuzz-report.json' },
    timeout: { type: 'string', default: '10000' },
    known: { type: 'string' },
  },
});
if (values.against !== undefined && values.against !== 'qemu') throw new Error(`--against: only 'qemu' is known, not '${values.against}'`);

interface Finding {
  id: string;
  /** What --known lists it by. */
  key: string;
  kind: FuzzCase['kind'];
  description: string;
  negotiate: boolean;
  what: string[];
  input: string;
  inputBase64?: string;
  qblockd: Outcome;
  qemu: Outcome | null;
}

async function main(): Promise<number> {
  const seed = Number(values.seed);
  const count = Number(values.count);
  const timeoutMs = Number(values.timeout);
  const qblockd = new Target('qblockd', timeoutMs);
  const qemu = values.against === 'qemu' ? new Target('qemu', timeoutMs) : null;
  // Read before any program starts: a list that does not fit the run must not leave them running.
  const known = knownDivergences(seed, count);
  const tally: Record<Verdict['kind'] | 'known-divergence', number> = { same: 0, 'not-emulated': 0, 'known-qemu-crash': 0, difference: 0, 'known-divergence': 0 };
  const knownSeen = new Set<string>();
  const knownCrashes: Record<string, number> = {};
  const findings: Finding[] = [];
  const started = Date.now();
  const writeReport = (done: number) => {
    const seconds = (Date.now() - started) / 1000;
    const qemuStartCrashes = qemu?.startCrashes ?? 0;
    const summary = { seed, count, done, against: qemu ? 'qemu' : null, seconds, tally, knownCrashes, qemuStartCrashes, excludedCrashes: KNOWN_QEMU_CRASHES.map((c) => c.name) };
    fs.writeFileSync(values.report!, JSON.stringify({ summary, findings }, null, 1) + '\n');
    return seconds;
  };
  let done = 0;
  try {
    await Promise.all([qblockd.start(), qemu?.start()]);
    for (const fuzzCase of generateCases(seed, count)) {
      if (process.env.FUZZ_TRACE) console.error(`case ${fuzzCase.id} ${fuzzCase.kind}: ${fuzzCase.description.slice(0, 120)}`);
      const [own, reference] = await Promise.all([qblockd.run(fuzzCase), qemu ? qemu.run(fuzzCase) : null]);
      const verdict = judge(fuzzCase, own, reference);
      const key = caseKey(fuzzCase);
      const listed = verdict.kind === 'difference' && known.has(key) && own.survived && !own.hung;
      if (listed) knownSeen.add(key);
      tally[listed ? 'known-divergence' : verdict.kind]++;
      if (verdict.kind === 'known-qemu-crash') knownCrashes[verdict.crash] = (knownCrashes[verdict.crash] ?? 0) + 1;
      if (verdict.kind === 'difference') {
        findings.push(finding(fuzzCase, verdict.what, own, reference));
        console.log(`${listed ? 'KNOWN' : 'DIFF'} ${fuzzCase.id} ${fuzzCase.kind}: ${fuzzCase.description}: ${verdict.what.join(', ')}`);
        console.log(`  case: ${key}`);
        if (reference) console.log(`  ${firstDifference(own, reference)}`);
        writeReport(done);
      }
      // A difference may leave the two states apart; a dead or hung program needs a new process.
      const restart = verdict.kind !== 'same' && verdict.kind !== 'not-emulated';
      await Promise.all([
        restart || !own.survived || own.hung ? qblockd.restart() : null,
        qemu && (restart || !reference!.survived || reference!.hung) ? qemu.restart() : null,
      ]);
      done++;
    }
  } finally {
    await Promise.all([qblockd.stop(), qemu?.stop()]);
  }
  const seconds = writeReport(done);
  const gone = qemu ? [...known.keys()].filter((id) => !knownSeen.has(id)) : [];
  for (const key of gone) console.log(`GONE ${key}: listed in ${values.known} but not drawn or now the same as QEMU; take it off the list`);
  console.log(`${count} cases in ${seconds.toFixed(1)} s (seed ${seed}${qemu ? ', against QEMU 7.2' : ', qblockd alone'}): ` +
    `${tally.same} same, ${tally['not-emulated']} not emulated, ${tally['known-qemu-crash']} known QEMU crashes, ` +
    `${tally['known-divergence']} known divergences, ${tally.difference} differences` +
    `${qemu?.startCrashes ? `, QEMU crashed ${qemu.startCrashes} times while starting (started again)` : ''}; report: ${values.report}`);
  return tally.difference > 0 || gone.length > 0 ? 1 : 0;
}

/**
 * A case by what it is rather than where the seed put it: its description and a hash of
 * its bytes (and files), so a change of the schema that renumbers cases keeps the name.
 */
function caseKey(fuzzCase: FuzzCase): string {
  const hash = createHash('sha256').update(fuzzCase.input);
  for (const [name, bytes] of Object.entries(fuzzCase.files ?? {}).sort(([a], [b]) => a.localeCompare(b))) hash.update(name).update(bytes);
  return `${fuzzCase.kind}: ${fuzzCase.description} #${hash.digest('hex').slice(0, 16)}`;
}

/** The divergences from QEMU still open, by case key, for the seed and count they were found with. */
function knownDivergences(seed: number, count: number): Map<string, string> {
  if (values.known === undefined) return new Map();
  const list = JSON.parse(fs.readFileSync(values.known, 'utf8')) as { seed: number; count: number; divergences: Array<{ case: string; what: string }> };
  if (list.seed !== seed || list.count !== count) throw new Error(`${values.known} lists seed ${list.seed}, count ${list.count}: run with those`);
  for (const entry of list.divergences) if (typeof entry.case !== 'string') throw new Error(`${values.known}: every divergence names its "case" (the "case:" line of its DIFF)`);
  return new Map(list.divergences.map((entry) => [entry.case, entry.what]));
}

/** Where two outcomes part, with some context: enough to see the difference in a terminal. */
function firstDifference(own: Outcome, reference: Outcome): string {
  const a = [...own.lines, '--- state', ...own.state];
  const b = [...reference.lines, '--- state', ...reference.state];
  const line = a.findIndex((text, i) => text !== b[i]);
  if (line < 0) return a.length === b.length ? 'same text' : `QEMU sent more: ${b[a.length]?.slice(0, 200)}`;
  const x = a[line]!;
  const y = b[line] ?? '';
  let at = 0;
  while (x[at] === y[at]) at++;
  const from = Math.max(0, at - 80);
  return `line ${line}:\n    qblockd: ${x.slice(from, at + 120)}\n    qemu:    ${y.slice(from, at + 120)}`;
}

function finding(fuzzCase: FuzzCase, what: string[], own: Outcome, reference: Outcome | null): Finding {
  const text = fuzzCase.input.toString('utf8');
  const exact = Buffer.from(text, 'utf8').equals(fuzzCase.input);
  return {
    id: fuzzCase.id,
    key: caseKey(fuzzCase),
    kind: fuzzCase.kind,
    description: fuzzCase.description,
    negotiate: fuzzCase.negotiate,
    what,
    // Long inputs are shown cut; the exact bytes are then in inputBase64.
    input: text.length > 4000 ? `${text.slice(0, 4000)}... (${text.length} chars)` : text,
    ...(exact && text.length <= 4000 ? {} : { inputBase64: fuzzCase.input.toString('base64') }),
    qblockd: own,
    qemu: reference,
  };
}

process.exitCode = await main();
