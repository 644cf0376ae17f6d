import crypto from 'node:crypto';
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * src/web/assets, from the sources (./assets) or from bin/qblockd's bundle,
 * which runs from node_modules/.cache/qblockd/ in the same checkout.
 */
function assetsDirectory(): URL {
  const candidates = [new URL('./assets/', import.meta.url), new URL('../../../src/web/assets/', import.meta.url)];
  const found = candidates.find((candidate) => fs.existsSync(new URL('index.html', candidate)));
  if (!found) throw new Error(`web view assets not found (looked in ${candidates.map((c) => c.pathname).join(', ')})`);
  return found;
}

/** Addresses the web view may be served on: the page holds a console to the whole daemon. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The web view: one HTML document with its script and style inlined, so the
 * single request that carries the token brings everything (no CDN, no further
 * request to authenticate). The page then speaks QMP over the WebSocket.
 */
export function webPage(): (req: IncomingMessage, res: ServerResponse) => void {
  const assets = assetsDirectory();
  const read = (name: string) => fs.readFileSync(new URL(name, assets), 'utf8');
  const script = read('app.js');
  const style = read('style.css');
  const html = read('index.html').replace('/*STYLE*/', () => style).replace('/*SCRIPT*/', () => script);
  const hash = (text: string) => `'sha256-${crypto.createHash('sha256').update(text).digest('base64')}'`;
  const headers = {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    // The token is in the address: never send it on as a referrer, never let another site frame the page.
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': `default-src 'none'; script-src ${hash(script)}; style-src ${hash(style)}; connect-src 'self'; img-src data:; frame-ancestors 'none'`,
  };
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    if (path !== '/') return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found\n');
    res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : html);
  };
}
