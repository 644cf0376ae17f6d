import { describe, expect, it } from 'vitest';
import {
  ExtentList,
  decodeOptionHeader,
  decodeRequest,
  requestOffsetText,
  encodeBlockStatusChunk,
  DATA_HEAD_ROOM,
  dataChunkAround,
  encodeErrorChunk,
  encodeExportNameReply,
  encodeGreeting,
  encodeHoleChunk,
  encodeOptionError,
  encodeServerEntry,
  encodeSimpleReply,
  optionName,
  simpleReplyAround,
} from '../../../src/nbd/protocol.ts';

// Layouts and magic numbers as NetworkBlockDevice/nbd doc/proto.md gives them, written out in hex.
const HANDLE = Buffer.from('0102030405060708', 'hex');

describe('NBD wire format (doc/proto.md)', () => {
  it('greets with NBDMAGIC, IHAVEOPT and NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES', () => {
    expect(encodeGreeting().toString('hex')).toBe('4e42444d41474943' + '49484156454f5054' + '0003');
  });

  it('reads an option header: magic, option, length', () => {
    const header = decodeOptionHeader(Buffer.from('49484156454f5054' + '00000007' + '0000000a', 'hex'));
    expect(header).toEqual({ magic: 0x49484156454f5054n, option: 7, length: 10 });
  });

  it('writes option replies with the reply magic 0x3e889045565a9 and the error text as payload', () => {
    expect(encodeOptionError(99, 0x80000001, 'no').toString('hex')).toBe('0003e889045565a9' + '00000063' + '80000001' + '00000002' + '6e6f');
    expect(encodeServerEntry('ab', 'd').toString('hex')).toBe('00000002' + '6162' + '64');
  });

  it('answers NBD_OPT_EXPORT_NAME with size, flags and 124 zeroes unless the client said no zeroes', () => {
    expect(encodeExportNameReply(0x10000, 0x0ded, true).toString('hex')).toBe('0000000000010000' + '0ded');
    expect(encodeExportNameReply(512, 3, false)).toHaveLength(134);
  });

  it('reads a request: magic, flags, type, handle, 64-bit offset, length', () => {
    const request = decodeRequest(Buffer.from('25609513' + '0004' + '0000' + '0102030405060708' + 'ffffffffffffffff' + '00001000', 'hex'));
    expect(request).toEqual({ magic: 0x25609513, flags: 4, type: 0, handle: HANDLE, offsetHigh: 0xffffffff, offsetLow: 0xffffffff, offset: 2 ** 64 - 1, length: 4096 });
    expect(requestOffsetText(request)).toBe('18446744073709551615');
  });

  it('writes simple replies and structured chunks', () => {
    expect(encodeSimpleReply(HANDLE, 22).toString('hex')).toBe('67446698' + '00000016' + '0102030405060708');
    const withData = () => Buffer.concat([Buffer.alloc(DATA_HEAD_ROOM, 0xff), Buffer.from('abcd')]);
    expect(dataChunkAround(withData(), HANDLE, true, 512).toString('hex')).toBe('668e33ef' + '0001' + '0001' + '0102030405060708' + '0000000c' + '0000000000000200' + '61626364');
    expect(dataChunkAround(withData(), HANDLE, false, 2 ** 40 + 0x80000005).toString('hex')).toBe('668e33ef' + '0000' + '0001' + '0102030405060708' + '0000000c' + '0000010080000005' + '61626364');
    expect(simpleReplyAround(withData(), HANDLE).toString('hex')).toBe('67446698' + '00000000' + '0102030405060708' + '61626364');
    expect(encodeHoleChunk(HANDLE, false, 0, 65536).toString('hex')).toBe('668e33ef' + '0000' + '0002' + '0102030405060708' + '0000000c' + '0000000000000000' + '00010000');
    expect(encodeErrorChunk(HANDLE, 22, 'bad').toString('hex')).toBe('668e33ef' + '0001' + '8001' + '0102030405060708' + '00000009' + '00000016' + '0003' + '626164');
    const status = encodeBlockStatusChunk(HANDLE, true, 2, [{ length: 65536, flags: 1 }, { length: 512, flags: 0 }]);
    expect(status.toString('hex')).toBe('668e33ef' + '0001' + '0005' + '0102030405060708' + '00000014' + '00000002' + '00010000' + '00000001' + '00000200' + '00000000');
  });

  it('names options as QEMU prints them', () => {
    expect([1, 7, 9, 10, 11].map(optionName)).toEqual(['export name', 'go', 'list meta context', 'set meta context', '<unknown>']);
  });
});

describe('ExtentList: how QEMU gathers extents', () => {
  it('merges runs with equal flags, skips empty ones', () => {
    const list = new ExtentList(10);
    list.add(512, 3);
    list.add(0, 0);
    list.add(1024, 3);
    list.add(4096, 0);
    expect(list.extents).toEqual([{ length: 1536, flags: 3 }, { length: 4096, flags: 0 }]);
  });

  it('never merges past 32 bits', () => {
    const list = new ExtentList(10);
    list.add(0x7fffffff, 1);
    list.add(0x7fffffff, 1);
    list.add(2, 1);
    expect(list.extents).toEqual([{ length: 0xfffffffe, flags: 1 }, { length: 2, flags: 1 }]);
  });

  it('stops at its limit and refuses everything after, even a run it could have merged', () => {
    const list = new ExtentList(1);
    expect(list.add(512, 0)).toBe(true);
    expect(list.add(512, 1)).toBe(false);
    expect(list.add(512, 0)).toBe(false);
    expect(list.extents).toEqual([{ length: 512, flags: 0 }]);
  });
});
