import { start } from './start.ts';

start(process.argv.slice(2));
