import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';

/**
 * The browser phone an adapter serves on its WebSocket port: `/phone` (the
 * page) and `/phone.js` (browser/phone.js with JsSIP, bundled by esbuild at
 * start-up from the installed packages: no CDN, nothing fetched at run time).
 * The page connects back to the same host and port over WSS (RFC 7118), so
 * one certificate covers both.
 */
const here = dirname(fileURLToPath(import.meta.url));
export const PHONE_ENTRY = join(here, 'browser', 'phone.js');

/** Bundle the browser phone (JsSIP included) into one script. */
export async function bundlePhone(): Promise<string> {
  const esbuild = await import('esbuild');
  try {
    const r = await esbuild.build({
      entryPoints: [PHONE_ENTRY],
      bundle: true,
      minify: true,
      format: 'iife',
      target: ['chrome100', 'firefox100', 'safari15'],
      write: false,
      logLevel: 'silent',
    });
    return r.outputFiles[0].text;
  } catch (e) {
    throw new OverlayError('BAD_CONFIG', `cannot bundle the browser phone: ${(e as Error).message.split('\n')[0]}`);
  }
}

const SECURITY_HEADERS = {
  // The page talks only to the adapter that served it: its own script, its own WebSocket.
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self' wss: ws:; img-src 'self' data:; media-src 'self' blob: mediastream:",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** The handler for plain HTTP(S) requests on the WebSocket port: the phone page, its script, 404 for the rest. */
export async function phonePage(
  c: { logger?: Logger } = {},
): Promise<(req: IncomingMessage, res: ServerResponse) => void> {
  const log = c.logger ?? silentLogger;
  const started = Date.now();
  const script = await bundlePhone();
  log.info({ bytes: script.length, ms: Date.now() - started }, 'browser phone bundled');
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end('method not allowed\n');
      return;
    }
    if (path === '/' || path === '/phone' || path === '/phone/') {
      res.writeHead(path === '/' ? 302 : 200, {
        ...SECURITY_HEADERS,
        'content-type': 'text/html; charset=utf-8',
        ...(path === '/' ? { location: '/phone' } : {}),
      });
      res.end(req.method === 'HEAD' || path === '/' ? undefined : PAGE);
      return;
    }
    if (path === '/phone.js') {
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/javascript; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : script);
      return;
    }
    res.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'text/plain' });
    res.end('not found\n');
  };
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>secp2psip phone</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 34em; margin: 2em auto; padding: 0 1em; color: #222; }
  fieldset { border: 1px solid #ccc; border-radius: 6px; margin: 0 0 1em; }
  label { display: block; margin: .4em 0; }
  input { font: inherit; width: 100%; box-sizing: border-box; padding: .3em; }
  button { font: inherit; padding: .4em 1em; margin: .3em .3em 0 0; }
  #status { font-weight: bold; }
  #caller { font-size: 1.3em; margin: .5em 0; }
  .verified { color: #176f2c; }
  .unverified { color: #a33; }
  details { margin-top: 1em; color: #555; }
</style>
</head>
<body>
<h1>secp2psip phone</h1>
<fieldset>
  <legend>Account</legend>
  <label>Name <input id="name" autocomplete="username" placeholder="alice"></label>
  <label>Password <input id="password" type="password" autocomplete="current-password" placeholder="(none with --open-registration)"></label>
  <button id="register">Register</button> <button id="unregister">Unregister</button>
</fieldset>
<fieldset>
  <legend>Call</legend>
  <label>Call <input id="target" placeholder="bob"></label>
  <button id="call">Call</button> <button id="answer" disabled>Answer</button> <button id="hangup" disabled>Hang up</button>
  <p id="status">not registered</p>
  <p id="caller"></p>
</fieldset>
<details>
  <summary>ICE servers (STUN/TURN)</summary>
  <label>URLs, comma-separated <input id="ice" placeholder="stun:stun.example.org:3478, turn:turn.example.org:3478"></label>
  <label>TURN user <input id="iceUser"></label>
  <label>TURN password <input id="icePass" type="password"></label>
  <label><input id="iceRelay" type="checkbox" style="width:auto"> relay only (media only through the TURN server)</label>
</details>
<audio id="remote" autoplay></audio>
<script src="/phone.js"></script>
</body>
</html>
`;
