import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** tests/browser */
export const TESTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** repository root */
export const REPO_ROOT = path.resolve(TESTS_DIR, '..', '..');
export const PAGES_DIR = path.join(TESTS_DIR, 'pages');
export const SDK_DIR = path.join(TESTS_DIR, 'node_modules', '@flashphoner', 'websdk');
export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'target', 'browser-screenshots');

/** The webcall binary: $WEBCALL_BIN, else ../../target/debug/webcall relative to tests/browser. */
export function webcallBin() {
  const fromEnv = process.env.WEBCALL_BIN;
  if (fromEnv) return path.resolve(fromEnv);
  return path.resolve(TESTS_DIR, '..', '..', 'target', 'debug', 'webcall');
}
