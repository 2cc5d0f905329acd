import fs from 'node:fs';
import path from 'node:path';
import { SCREENSHOT_DIR } from './paths.mjs';

/** Saves a PNG of the page under target/browser-screenshots/<name>.png and returns its path. */
export async function screenshot(page, name) {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name.replace(/[^A-Za-z0-9._-]+/g, '_')}.png`);
  try {
    await page.screenshot({ path: file, fullPage: true });
  } catch (err) {
    // A screenshot is evidence, not the thing under test.
    console.log(`# screenshot ${name} failed: ${err.message}`);
    return null;
  }
  return file;
}
