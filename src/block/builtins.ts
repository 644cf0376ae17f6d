import { createRequire } from 'node:module';

const requireBuiltin = createRequire(import.meta.url);

// node:crypto and node:zlib each take milliseconds to load, a real part of a start that
// needs neither (only sha256 and compressed qcow2 clusters do): they load on first use.
export const lazyCrypto = () => requireBuiltin('node:crypto') as typeof import('node:crypto');
export const lazyZlib = () => requireBuiltin('node:zlib') as typeof import('node:zlib');
