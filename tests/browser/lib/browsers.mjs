// Launches Debian's Chromium and Firefox ESR through puppeteer-core (never a downloaded browser).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const FIREFOX_BIN = process.env.FIREFOX_BIN || '/usr/bin/firefox-esr';

// Flags known to work for headless WebRTC on these machines.
export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
];

export const FIREFOX_PREFS = {
  'media.navigator.streams.fake': true,
  'permissions.default.camera': 1,
  'permissions.default.microphone': 1,
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.autoplay.default': 0,
  // Never dial out from a test browser.
  'app.update.enabled': false,
  'browser.shell.checkDefaultBrowser': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.enabled': false,
};

/**
 * Chromium with a fresh --user-data-dir in a temp dir.
 * `dropArgs`: flags of CHROMIUM_FLAGS to leave out; `onlyLoopback`: add --allow-loopback-in-peer-connection (for namespaces with only `lo`).
 */
export async function launchChromium({ extraArgs = [], dropArgs = [], onlyLoopback = false } = {}) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webcall-chromium-'));
  const args = [...CHROMIUM_FLAGS.filter((a) => !dropArgs.includes(a)), ...extraArgs];
  if (onlyLoopback || process.env.WEBCALL_ONLY_LOOPBACK === '1') args.push('--allow-loopback-in-peer-connection');
  const browser = await puppeteer.launch({
    browser: 'chrome',
    executablePath: CHROMIUM_BIN,
    // headless: true makes puppeteer pass --headless=new itself (same as CHROMIUM_FLAGS).
    headless: true,
    userDataDir,
    args: args.filter((a) => !a.startsWith('--headless')),
    defaultViewport: { width: 1280, height: 800 },
    protocolTimeout: 60000,
  });
  const close = browser.close.bind(browser);
  browser.close = async () => {
    try {
      await close();
    } finally {
      fs.rmSync(userDataDir, { recursive: true, force: true });
    }
  };
  browser.kind = 'chromium';
  return browser;
}

/** Firefox ESR over WebDriver BiDi with the fake-media prefs. */
export async function launchFirefox({ extraPrefs = {} } = {}) {
  const browser = await puppeteer.launch({
    browser: 'firefox',
    protocol: 'webDriverBiDi',
    executablePath: FIREFOX_BIN,
    headless: true,
    extraPrefsFirefox: { ...FIREFOX_PREFS, ...extraPrefs },
    defaultViewport: { width: 1280, height: 800 },
    protocolTimeout: 60000,
  });
  browser.kind = 'firefox';
  return browser;
}

export function launch(kind, opts) {
  if (kind === 'chromium') return launchChromium(opts);
  if (kind === 'firefox') return launchFirefox(opts);
  throw new Error(`unknown browser ${kind}`);
}
