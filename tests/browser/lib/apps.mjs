// Helpers for driving the three applications (/conference, /video-chat, /video-chat-screen)
// the way a person does: type the login, click Join, read tiles, chat, click Leave. Every wait
// is on the page's own state (no blind sleeps).
import assert from 'node:assert/strict';
import { waitInPage } from './harness.mjs';

/** Opens `url` in `page` and waits until Join can be clicked. */
export async function openApp(page, url) {
  const res = await page.goto(url);
  assert.equal(res.status(), 200, `GET ${url} answers 200`);
  await page.waitForSelector('#joinBtn:not([disabled])');
}

/** Types the login, clicks Join, waits for the ESTABLISHED label and the Leave button. */
export async function join(page, login) {
  await page.click('#login');
  await page.type('#login', login);
  await page.click('#joinBtn');
  const outcome = await waitInPage(page, `${login}: ESTABLISHED and in the room`, () => {
    const notice = document.getElementById('notice');
    if (!notice.hidden && notice.classList.contains('error')) return `error: ${notice.textContent}`;
    const inRoom = document.getElementById('status').textContent === 'ESTABLISHED' && !document.getElementById('leaveBtn').hidden;
    return inRoom ? 'joined' : false;
  });
  assert.equal(outcome, 'joined', `${login} joined`);
}

/** Waits for the local camera tile to be live (PUBLISHING); returns its codec. */
export async function waitLive(page, who) {
  return waitInPage(page, `${who}: own camera PUBLISHING`, () => {
    const t = document.getElementById('localTile');
    return t.dataset.status === 'PUBLISHING' ? (t.dataset.codec || 'unknown') : false;
  });
}

/** The invite link the page shows. */
export async function inviteLink(page) {
  return page.$eval('#inviteLink', (a) => a.href);
}

function tileSelector(login, screen) {
  return `figure.remote${screen ? '.screen' : ':not(.screen)'}[data-login="${login.replace(/"/g, '\\"')}"]`;
}

/** Frames presented by the <video> in the tile of `login` (camera or screen), or false. */
function tileFrames([sel]) {
  const tile = document.querySelector(sel);
  const v = tile && tile.querySelector('video');
  if (!v || !v.srcObject || v.videoWidth === 0 || v.paused) return false;
  // Firefox leaves getVideoPlaybackQuality() at 0 for MediaStream playback; count the frames
  // presented with requestVideoFrameCallback as well (both browsers have it).
  if (v.requestVideoFrameCallback && v.__framesSeen === undefined) {
    v.__framesSeen = 0;
    const count = () => {
      v.__framesSeen += 1;
      v.requestVideoFrameCallback(count);
    };
    v.requestVideoFrameCallback(count);
  }
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
  const n = Math.max(q ? q.totalVideoFrames : 0, v.webkitDecodedFrameCount || 0, v.mozPaintedFrames || 0, v.__framesSeen || 0);
  return n > 0 ? n : false;
}

/**
 * Waits until `who`'s tile of `from` shows video frames, then until 15 more were presented.
 * Returns {frames, codec, width, height}.
 */
export async function waitDecoding(page, who, from, { screen = false, timeout = 25000 } = {}) {
  const sel = tileSelector(from, screen);
  const what = `${who}: ${from}'s ${screen ? 'screen' : 'camera'}`;
  const f0 = await waitInPage(page, `${what} shows frames`, tileFrames, [sel], timeout);
  const f1 = await waitInPage(page, `${what} keeps showing frames (> ${f0 + 15})`,
    ([s, min, src]) => {
      // eslint-disable-next-line no-new-func
      const n = new Function(`return (${src})`)()([s]);
      return n && n >= min ? n : false;
    }, [sel, f0 + 15, tileFrames.toString()], 15000);
  assert.ok(f1 > f0, `${what}: frames rise (${f0} -> ${f1})`);
  const info = await page.$eval(sel, (t) => {
    const v = t.querySelector('video');
    return { codec: t.dataset.codec || null, status: t.dataset.status, width: v.videoWidth, height: v.videoHeight };
  });
  return { frames: f1, ...info };
}

/** Waits until the tile of `from` is PLAYING with `codec` ('H264' / 'VP8'). */
export async function waitCodec(page, who, from, codec, { screen = false } = {}) {
  const sel = tileSelector(from, screen);
  await waitInPage(page, `${who}: ${from}'s ${screen ? 'screen' : 'camera'} playing as ${codec}`,
    ([s, c]) => {
      const t = document.querySelector(s);
      return t && t.dataset.status === 'PLAYING' && t.dataset.codec === c;
    }, [sel, codec]);
}

/** Types a chat line and presses Enter. */
export async function sendChat(page, text) {
  await page.click('#chatInput');
  await page.type('#chatInput', text);
  await page.keyboard.press('Enter');
}

/** Waits for a chat line with sender `from` and `text`. */
export async function waitChatLine(page, who, from, text) {
  await waitInPage(page, `${who}: chat line "${from}: ${text}"`, ([f, t]) =>
    [...document.querySelectorAll('#chatLog li')].some((li) =>
      li.querySelector('.from')?.textContent === f && li.querySelector('.text')?.textContent === t), [from, text]);
}

/** Waits until the tile of `login` (camera or screen) is gone. */
export async function waitTileGone(page, who, login, { screen = false } = {}) {
  await waitInPage(page, `${who}: ${login}'s ${screen ? 'screen ' : ''}tile removed`,
    (sel) => !document.querySelector(sel), tileSelector(login, screen));
}

/** Waits for the notice line to show text matching `re`; returns the text. */
export async function waitNotice(page, who, re) {
  const text = await waitInPage(page, `${who}: notice matching ${re}`, (src) => {
    const n = document.getElementById('notice');
    return !n.hidden && n.textContent && new RegExp(src).test(n.textContent) ? n.textContent : false;
  }, re.source);
  return text;
}

/** Console errors of every page of the harness must be empty. */
export function assertNoConsoleErrors(h, pages) {
  for (const page of pages) {
    assert.deepEqual(h.consoleErrors(page), [], `${page.__label}: no console errors`);
  }
}
