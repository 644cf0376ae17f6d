'use strict';
// Runs the qblockd bundle that bin/qblockd builds, compiled from V8's code cache kept
// beside it (BUNDLE.cache):
//   node run-bundle.cjs BUNDLE -- ARGS...          start qblockd with ARGS
//   node run-bundle.cjs BUNDLE --make-cache FILE   rehearse the first commands, then write the cache to FILE
// A cache from another bundle or another V8 is rejected by V8 and the bundle compiles as usual.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const [bundle, mode, ...args] = process.argv.slice(2);
const makeCache = mode === '--make-cache';
let cachedData;
try {
  if (!makeCache) cachedData = fs.readFileSync(`${bundle}.cache`);
} catch {
  // no cache yet: compile from source
}
// The bundle is a CommonJS module function already (bin/qblockd wraps it).
const script = new vm.Script(fs.readFileSync(bundle, 'utf8'), { filename: bundle, cachedData });
const bundled = { exports: {} };
script.runInThisContext()(bundled.exports, require, bundled, bundle, path.dirname(bundle));
if (makeCache) {
  bundled.exports.rehearse().then(() => fs.writeFileSync(args[0], script.createCachedData()));
} else {
  bundled.exports.start(args);
}
