/** What bin/qblockd's bundle exports to bin/run-bundle.cjs: a start, and the rehearsal its code cache is made from. */
export { start } from './start.ts';
export { rehearse } from './rehearsal.ts';
