/**
 * The browser phone in a real chromium driven by puppeteer-core: fake media
 * devices (a generated tone, no prompt), the adapter's self-signed certificate
 * accepted, WebRTC kept on this host. `window.phone` is the page's own API
 * (src/phone/browser/phone.js), the one its buttons use.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = '/usr/bin/chromium';

export function haveChromium(): boolean {
  return existsSync(CHROMIUM);
}

export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--ignore-certificate-errors',
      // Host candidates as plain addresses of this host (no mDNS names, nothing multicast on the network). Not
      // loopback candidates: with them chromium and baresip 1.0's ICE nominate different pairs, and DTLS never
      // completes; the host's own address keeps the media inside the host all the same.
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

export interface PhoneState {
  registered: boolean;
  status: string;
  incoming: { from: string; verified: boolean } | null;
  inCall: boolean;
  ringing: boolean;
  log: Array<{
    direction: string;
    peer: string;
    verified: boolean | null;
    cause: string | null;
    /** 'local' or 'remote' (JsSIP's originator of the end). */
    endedBy: string | null;
    established: boolean;
  }>;
}

export interface MediaStats {
  packetsReceived: number;
  packetsSent: number;
  bytesReceived: number;
  dtls: { state: string; srtpCipher: string | null } | null;
  /** Candidate types of the nominated pair (host, srflx, relay). */
  pair: { local: string | null; remote: string | null } | null;
}

export class BrowserPhone {
  constructor(
    readonly page: Page,
    readonly name: string,
  ) {}

  static async open(browser: Browser, url: string, name: string): Promise<BrowserPhone> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(() => 'phone' in globalThis, { timeout: 10_000 });
    return new BrowserPhone(page, name);
  }

  state(): Promise<PhoneState> {
    return this.page.evaluate(() => (globalThis as unknown as { phone: { state: PhoneState } }).phone.state);
  }

  media(): Promise<MediaStats | null> {
    return this.page.evaluate(() =>
      (globalThis as unknown as { phone: { mediaStats(): Promise<MediaStats | null> } }).phone.mediaStats(),
    );
  }

  /** Call one method of `window.phone` with string arguments. */
  do(method: 'register' | 'call' | 'answer' | 'hangup', ...args: string[]): Promise<void> {
    return this.page.evaluate(
      (m, a) => {
        const p = (globalThis as unknown as { phone: Record<string, (...x: string[]) => unknown> }).phone;
        p[m](...a);
      },
      method,
      args,
    );
  }

  /** Fill the page's ICE server settings (STUN/TURN), as a user would. */
  async setIce(urls: string, user: string, password: string, relayOnly: boolean): Promise<void> {
    await this.page.evaluate(
      (u, n, p, r) => {
        const doc = (globalThis as unknown as { document: { getElementById(id: string): Record<string, unknown> } })
          .document;
        doc.getElementById('ice').value = u;
        doc.getElementById('iceUser').value = n;
        doc.getElementById('icePass').value = p;
        doc.getElementById('iceRelay').checked = r;
      },
      urls,
      user,
      password,
      relayOnly,
    );
  }

  text(selector: string): Promise<string> {
    return this.page.$eval(selector, (el) => el.textContent ?? '');
  }

  async until(what: string, check: (s: PhoneState) => boolean, ms = 30_000): Promise<PhoneState> {
    const end = Date.now() + ms;
    for (;;) {
      const s = await this.state();
      if (check(s)) return s;
      if (Date.now() > end) assert.fail(`${this.name}: ${what} did not happen; state ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Wait until RTP arrives over the call's peer connection (getStats), and return the counters. */
  async mediaFlowing(min = 20, ms = 30_000): Promise<MediaStats> {
    const end = Date.now() + ms;
    for (;;) {
      const m = await this.media();
      if (m && m.packetsReceived >= min) return m;
      if (Date.now() > end) assert.fail(`${this.name}: no media received; stats ${JSON.stringify(m)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
