import { describe, expect, it } from 'vitest';
import { parseKeyval } from '../../../src/cli/keyval.ts';

/** Error texts in comments are what QEMU 7.2 printed for `-blockdev <text>` (keyval, implied key "driver"). */
const fails = (text: string) => expect(() => parseKeyval(text, 'driver'));

describe('keyval (util/keyval.c rules)', () => {
  it('reads flat keys, with the implied key first', () => {
    expect(parseKeyval('null-co,node-name=n0,size=1G', 'driver')).toEqual({ driver: 'null-co', 'node-name': 'n0', size: '1G' });
    expect(parseKeyval('driver=qcow2,file=f0', 'driver')).toEqual({ driver: 'qcow2', file: 'f0' });
  });

  it('builds nested objects from dotted keys', () => {
    expect(parseKeyval('driver=qcow2,node-name=n0,file.driver=file,file.filename=d.qcow2,file.x.y=z')).toEqual({
      driver: 'qcow2',
      'node-name': 'n0',
      file: { driver: 'file', filename: 'd.qcow2', x: { y: 'z' } },
    });
  });

  it('builds lists from numeric fragments, in any order', () => {
    expect(parseKeyval('a.1=b,a.0=a,m.0.k=v,m.1.k=w')).toEqual({ a: ['a', 'b'], m: [{ k: 'v' }, { k: 'w' }] });
  });

  it('turns ,, into a comma inside a value, and allows a trailing comma', () => {
    expect(parseKeyval('filename=/tmp/a,,b.img,x=1,')).toEqual({ filename: '/tmp/a,b.img', x: '1' });
  });

  it('keeps the last value of a key given twice', () => {
    expect(parseKeyval('size=1,size=2')).toEqual({ size: '2' });
  });

  it('gives the implied key the first item up to the first comma, without ,, escaping', () => {
    // -blockdev null-co,,x: Invalid parameter ''
    fails('null-co,,x').toThrow("Invalid parameter ''");
  });

  it('rejects a key used as both leaf and parent', () => {
    fails('null-co,a.b=1,a=2').toThrow("Parameters 'a.*' used inconsistently");
    fails('null-co,a=2,a.b=1').toThrow("Parameters 'a.*' used inconsistently");
    fails('null-co,x.0.y=1,x.0=2').toThrow("Parameters 'x.0.*' used inconsistently");
  });

  it('rejects mixed numeric and named children, and list gaps', () => {
    fails('null-co,a.0=x,a.b=y').toThrow("Parameters 'a.*' used inconsistently");
    fails('null-co,a.1=x').toThrow("Parameter 'a.0' missing");
    fails('null-co,a.b.1=x').toThrow("Parameter 'a.b.0' missing");
  });

  it('rejects bad keys', () => {
    fails('null-co,=x').toThrow("Invalid parameter ''");
    fails(',').toThrow("Invalid parameter ''");
    fails('=null-co').toThrow("Invalid parameter ''");
    fails('null-co,a..b=1').toThrow("Invalid parameter 'a..b'");
    fails('null-co,1=x').toThrow("Invalid parameter '1'");
    fails('null-co,_a=1').toThrow("Invalid parameter '_a'");
    fails('null-co,foo').toThrow("Expected '=' after parameter 'foo'");
    fails(`null-co,${'k'.repeat(128)}=1`).toThrow(`Parameter '${'k'.repeat(128)}' is too long`);
    fails(`null-co,a.${'k'.repeat(128)}=1`).toThrow(`Parameter fragment '${'k'.repeat(128)}' is too long`);
  });

  it('accepts QAPI names with underscores and downstream prefixes', () => {
    expect(parseKeyval('a_b=1,__com.redhat_x=2')).toEqual({ a_b: '1', '__com.redhat_x': '2' });
  });

  it('refuses help requests', () => {
    // -blockdev help / -blockdev ? / -blockdev null-co,help: Help is not available for this option
    for (const text of ['help', '?', 'null-co,help', 'null-co,node-name=n0,help']) {
      fails(text).toThrow('Help is not available for this option');
    }
    expect(parseKeyval('driver=help')).toEqual({ driver: 'help' });
  });

  it('parses an empty string to an empty object', () => {
    expect(parseKeyval('', 'driver')).toEqual({});
  });
});
