import { describe, expect, it } from 'vitest';
import { generateCases, type FuzzCase } from './cases.ts';
import type { Outcome } from './target.ts';
import { judge, parsedRequests } from './verdict.ts';

const request = (text: string): FuzzCase => ({ id: 't', kind: 'request', description: '', negotiate: true, input: Buffer.from(text) });
const answered = (lines: string[], state: string[] = ['{"return": []}']): Outcome => ({ lines, state, survived: true, hung: false });
const died: Outcome = { lines: [], state: [], survived: false, hung: false, exit: 'signal SIGSEGV' };

describe('the fuzzer', () => {
  it('generates the same cases from the same seed, and other cases from another', () => {
    const bytes = (seed: number) => [...generateCases(seed, 50)].map((c) => c.input.toString('base64'));
    expect(bytes(5)).toEqual(bytes(5));
    expect(bytes(5)).not.toEqual(bytes(6));
  });

  it("never draws qblockd's own commands, which QEMU does not have", () => {
    const drawn = [...generateCases(1, 2000)].filter((c) => c.kind === 'request').map((c) => c.input.toString('latin1'));
    expect(drawn.length).toBeGreaterThan(1000);
    expect(drawn.filter((input) => input.includes('x-qblockd'))).toEqual([]);
  });

  it('finds requests behind garbage and several on one line', () => {
    const text = 'c\xff {"execute": "query-block"} {"execute": "transaction", "arguments": {"actions": []}}\n';
    expect(parsedRequests(Buffer.from(text, 'latin1')).map((r) => r.execute)).toEqual(['query-block', 'transaction']);
  });

  it('excludes a known QEMU crash, but only while qblockd survives it', () => {
    const enable = request('{"execute": "transaction", "arguments": {"actions": [{"type": "block-dirty-bitmap-enable", "data": {"node": "n0", "name": "x"}}]}}\n');
    const error = answered(['{"error": {"class": "GenericError", "desc": "Dirty bitmap \'x\' not found"}}']);
    expect(judge(enable, error, died)).toEqual({ kind: 'known-qemu-crash', crash: 'transaction whose block-dirty-bitmap-enable action fails its checks (SIGSEGV)' });
    expect(judge(enable, died, died).kind).toBe('difference');
    expect(judge(request('{"execute": "query-block"}\n'), error, died)).toEqual({ kind: 'difference', what: ['QEMU died (signal SIGSEGV), qblockd survived'] });
    const reopen = request('{"execute": "blockdev-reopen", "arguments": {"options": []}}\n');
    expect(judge(reopen, answered(['{"return": {}}']), died).kind).toBe('known-qemu-crash');
    expect(judge(request('{"execute": "blockdev-reopen", "arguments": {"options": [{}]}}\n'), answered(['{"return": {}}']), died).kind).toBe('difference');
  });

  it('tells differing replies and differing state apart, and counts what qblockd does not emulate', () => {
    const query = request('{"execute": "query-block"}\n');
    expect(judge(query, answered(['a']), answered(['a']))).toEqual({ kind: 'same' });
    expect(judge(query, answered(['a']), answered(['b']))).toEqual({ kind: 'difference', what: ['replies or events differ'] });
    expect(judge(query, answered(['a'], ['s1']), answered(['a'], ['s2']))).toEqual({ kind: 'difference', what: ['state afterwards differs'] });
    const notEmulated = answered(['{"error": {"class": "GenericError", "desc": "Driver \'nbd\' is not supported by qblockd"}}']);
    expect(judge(query, notEmulated, answered(['b']))).toEqual({ kind: 'not-emulated' });
    expect(judge(query, { ...answered([]), hung: true }, null)).toEqual({ kind: 'difference', what: ['qblockd hung'] });
  });

  it("lets a successful blockdev-create's late events fall either side of the replies queued behind it, and nothing else", () => {
    const event = (status: string) => `{"timestamp": {"seconds": S, "microseconds": U}, "event": "JOB_STATUS_CHANGE", "data": {"status": "${status}", "id": "j"}}`;
    const create = request('{"execute": "blockdev-create", "arguments": {"job-id": "j", "options": {"driver": "file", "filename": "x", "size": 0}}}\n{"execute": "query-block"}\n');
    const start = [event('created'), event('running'), '{"return": {}}'];
    const late = [event('waiting'), event('pending'), event('concluded')];
    const before = answered([...start, ...late, '{"return": []}']);
    const after = answered([...start, '{"return": []}', ...late]);
    expect(judge(create, before, after)).toEqual({ kind: 'same' });
    expect(judge(create, answered([...start, '{"return": []}', ...late.slice().reverse()]), after).kind).toBe('difference');
    const failing = [event('aborting'), event('concluded')];
    expect(judge(create, answered([...start, ...failing, '{"return": []}']), answered([...start, '{"return": []}', ...failing])).kind).toBe('difference');
    const query = request('{"execute": "query-block"}\n');
    expect(judge(query, before, after).kind).toBe('difference');
  });
});
