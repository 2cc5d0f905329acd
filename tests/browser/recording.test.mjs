// The seed's recording story with the official SDK (unmodified @flashphoner/websdk,
// pages/room.html with record=1) against `webcall --record-room-timeline`: Alice publishes with
// record, Bob 8 s later, Bob leaves, Alice leaves. Both PUBLISHING statuses give
// stream.getRecordInfo(); Bob's file starts with >= 7 s of black (ffmpeg blackdetect) and
// silence (volumedetect max <= -50 dB) and is live after; the seed's exact ffmpeg command
// succeeds and its right half is black before Bob and live after.
//
// Cases: Chromium H.264, Chromium VP8, Firefox ESR VP8 (Alice in Firefox, Bob in Chromium).
//
// Then the recorded files play in headless Chromium and Firefox from GET /records/FILE: a
// <video> that seeks to the middle, plays to `ended`, and ends with currentTime near the
// duration. H.264 files in both browsers; VP8-in-MP4 wherever canPlayType says it plays
// (printed as "# vp8-in-mp4").
//
// Last, a Chromium camera resized mid-stream (applyConstraints, 320x240 to 160x120): the JSON
// lists the change, ffmpeg decodes the file without a word and shows both sizes, and Chromium
// and Firefox play it to its end showing both.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { screenshot } from './lib/screenshots.mjs';

const CASE_TIMEOUT_MS = 180000;
const STEP_TIMEOUT_MS = 20000;
const BOB_LATER_MS = 8000;

const CASES = [
  { id: 'chromium-h264', title: 'Chromium H.264', alice: 'chromium', bob: 'chromium', strip: 'VP8,VP9,AV1', codec: 'h264' },
  { id: 'chromium-vp8', title: 'Chromium VP8', alice: 'chromium', bob: 'chromium', strip: 'H264,VP9,AV1', codec: 'vp8' },
  { id: 'firefox-vp8', title: 'Firefox ESR VP8', alice: 'firefox', bob: 'chromium', strip: 'H264,VP9,AV1', codec: 'vp8' },
];

const OWN_PUBLISHING = `
  const p = s.publishedName && s.streams[s.publishedName];
  return s.joined && p && p.status === 'PUBLISHING' ? (p.recordName || 'NO RECORD NAME') : false;`;

async function waitRoom(page, what, cond, arg, timeout = STEP_TIMEOUT_MS) {
  const value = await waitInPage(page, what, ([src, a]) => {
    const failure = window.__failure && window.__failure();
    if (failure) return failure;
    // eslint-disable-next-line no-new-func
    return new Function('s', 'arg', src)(window.__state, a) || false;
  }, [cond, arg], timeout);
  if (typeof value === 'string' && value.startsWith('FAILURE')) {
    throw new Error(`${page.__label}: ${value} (while waiting for ${what})`);
  }
  return value;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function finishedRecordings(server, files, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let list = [];
  while (Date.now() < deadline) {
    const res = await fetch(`${server.httpUrl}rest-api/recordings`);
    list = (await res.json()).recordings;
    const done = files.map((f) => list.find((e) => e.file === f && e.state === 'finished'));
    if (done.every(Boolean)) return done;
    await sleep(200);
  }
  throw new Error(`recordings not finished: ${JSON.stringify(list, null, 2)}`);
}

function ffmpegLog(args) {
  const r = spawnSync('ffmpeg', args, { encoding: 'utf8' });
  return r.stderr;
}

function leadingBlack(file) {
  const log = ffmpegLog(['-v', 'info', '-i', file, '-vf', 'blackdetect=d=0.1:pix_th=0.1', '-an', '-f', 'null', '-']);
  const m = log.match(/black_start:([\d.]+) black_end:([\d.]+)/);
  return m && Number(m[1]) < 0.1 ? Number(m[2]) : 0;
}

function volume(file, from, length) {
  const log = ffmpegLog(['-v', 'info', '-ss', String(from), '-i', file, '-t', String(length), '-vn', '-af', 'volumedetect', '-f', 'null', '-']);
  const read = (key) => Number((log.match(new RegExp(`${key}: (-?[\\d.]+|-inf) dB`)) || [])[1]);
  return { mean: read('mean_volume'), max: read('max_volume') };
}

/** Mean luma of a region of the picture at `second` (crop: ffmpeg crop filter arguments). */
function luma(file, second, crop) {
  const out = execFileSync('ffmpeg', ['-v', 'error', '-ss', String(second), '-i', file, '-frames:v', '1',
    '-vf', `crop=${crop}`, '-f', 'rawvideo', '-pix_fmt', 'gray', '-'], { maxBuffer: 64 << 20 });
  let sum = 0;
  for (const v of out) sum += v;
  return sum / Math.max(1, out.length);
}

function decodesClean(file) {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${file}: ${r.stderr}`);
  assert.equal(r.stderr.trim(), '', `${file} decodes without a word`);
}

/**
 * Plays `src` muted in a <video> of `page` to `ended` (after seeking to its middle, if asked);
 * returns its duration, where the seek landed, where it ended, and the picture widths seen.
 */
async function playToEnd(page, src, { seekToMiddle, rate }) {
  return page.evaluate(async (url, seek, playbackRate) => {
    const v = document.createElement('video');
    v.muted = true;
    v.src = url;
    document.body.appendChild(v);
    const once = (name) => new Promise((resolve, reject) => {
      v.addEventListener(name, resolve, { once: true });
      v.addEventListener('error', () => reject(new Error(`media error ${v.error && v.error.code}`)), { once: true });
    });
    await once('loadedmetadata');
    const duration = v.duration;
    let seekedTo = null;
    if (seek) {
      v.currentTime = duration / 2;
      await once('seeked');
      seekedTo = v.currentTime;
    }
    const widths = new Set();
    const timer = setInterval(() => widths.add(v.videoWidth), 50);
    v.playbackRate = playbackRate;
    const ended = once('ended');
    await v.play();
    await ended;
    clearInterval(timer);
    const out = { duration, seekedTo, endedAt: v.currentTime, width: v.videoWidth, widths: [...widths] };
    v.remove();
    return out;
  }, src, seekToMiddle, rate);
}

const playable = []; // {file, codec} for the playback test

for (const c of CASES) {
  test(`recording: ${c.title}, Bob ${BOB_LATER_MS / 1000} s later on the room timeline`, { timeout: CASE_TIMEOUT_MS }, () =>
    withHarness(`recording: ${c.title}`, async (h) => {
      const server = await h.startServer({ extraArgs: ['--record-room-timeline', '--record-resume-window', '0'] });
      const statics = await h.startStatic();
      const browserA = await h.launch(c.alice);
      const browserB = c.bob === c.alice ? browserA : await h.launch(c.bob);
      const alice = await h.newPage(browserA, `alice/${c.alice}`);
      const bob = await h.newPage(browserB, `bob/${c.bob}`);
      const room = `rec-${c.id}-${Math.random().toString(16).slice(2, 8)}`;
      const pageUrl = (user) => `${statics.url}room.html?${new URLSearchParams({
        url: server.wsUrl, user, room, strip: c.strip, record: '1',
      })}`;

      await alice.goto(pageUrl('alice'));
      const aliceFile = await waitRoom(alice, 'alice: PUBLISHING with a record name', OWN_PUBLISHING);
      assert.match(aliceFile, /^stream-.+\.mp4$/, `alice's getRecordInfo(): ${aliceFile}`);
      const aliceAt = Date.now();
      await sleep(BOB_LATER_MS);
      await bob.goto(pageUrl('bob'));
      const bobFile = await waitRoom(bob, 'bob: PUBLISHING with a record name', OWN_PUBLISHING);
      const bobLater = (Date.now() - aliceAt) / 1000;
      assert.notEqual(bobFile, aliceFile);
      await sleep(5000);
      await screenshot(bob, `recording-${c.id}-bob`);
      assert.equal(await bob.evaluate(() => window.__app.leave()), true, 'bob leaves');
      await sleep(1000);
      assert.equal(await alice.evaluate(() => window.__app.leave()), true, 'alice leaves');

      const [aliceEntry, bobEntry] = await finishedRecordings(server, [aliceFile, bobFile]);
      assert.equal(aliceEntry.timelineStart, bobEntry.timelineStart, 'one room timeline');
      const dir = path.join(server.dataDir, 'records');
      const aliceMp4 = path.join(dir, aliceFile);
      const bobMp4 = path.join(dir, bobFile);
      decodesClean(aliceMp4);
      decodesClean(bobMp4);
      const codecs = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', bobMp4], { encoding: 'utf8' });
      assert.deepEqual(codecs.trim().split('\n'), [c.codec, 'opus'], `bob's file: ${codecs}`);

      const black = leadingBlack(bobMp4);
      console.log(`# ${c.id}: bob published ${bobLater.toFixed(2)} s after alice; his file starts with ${black.toFixed(2)} s of black`);
      assert.ok(black >= 7, `bob's file starts with >= 7 s of black (${black} s)`);
      assert.ok(Math.abs(black - bobLater) <= 1.0, `the black head (${black} s) is the time before bob (${bobLater} s)`);
      const head = volume(bobMp4, 0, black - 0.5);
      assert.ok(head.max <= -50, `silence at bob's head: max ${head.max} dB`);
      const live = volume(bobMp4, black + 1, 2);
      assert.ok(live.mean > -45, `bob's microphone after the head: mean ${live.mean} dB`);
      const bobLive = Math.max(...[1, 2, 3].map((d) => luma(bobMp4, black + d, 'iw:ih:0:0')));
      assert.ok(bobLive > 25, `bob's camera after the head is not black (luma ${bobLive})`);

      // The seed's exact command, on copies named as in the seed.
      const work = fs.mkdtempSync(path.join(server.dataDir, 'seed-'));
      fs.copyFileSync(aliceMp4, path.join(work, 'stream1.mp4'));
      fs.copyFileSync(bobMp4, path.join(work, 'stream2.mp4'));
      const seed = spawnSync('ffmpeg', ['-i', 'stream1.mp4', '-i', 'stream2.mp4', '-filter_complex',
        '[0:v]pad=iw*2:ih[int];[int][1:v]overlay=W/2:0[vid];[0:a][1:a]amerge[a]', '-map', '[vid]', '-map', '[a]',
        '-ac', '2', '-strict', '-2', '-c:v', 'libx264', '-crf', '23', '-preset', 'veryfast', 'output.mp4'],
      { cwd: work, encoding: 'utf8' });
      assert.equal(seed.status, 0, `the seed's command: ${seed.stderr.slice(-2000)}`);
      const output = path.join(work, 'output.mp4');
      const before = luma(output, 3, 'iw/2:ih:iw/2:0');
      const after = Math.max(...[1, 2, 3].map((d) => luma(output, black + d, 'iw/2:ih:iw/2:0')));
      console.log(`# ${c.id}: output.mp4 right half luma ${before.toFixed(1)} at 3 s, ${after.toFixed(1)} at ${(black + 2).toFixed(1)} s`);
      assert.ok(before < 20, `the right half is black before bob (${before})`);
      assert.ok(after > 25, `the right half is live after bob joined (${after})`);
      const keep = path.join(path.dirname(server.dataDir), `webcall-recorded-${c.id}-${process.pid}`);
      fs.mkdirSync(keep, { recursive: true });
      fs.copyFileSync(aliceMp4, path.join(keep, aliceFile));
      playable.push({ dir: keep, file: aliceFile, codec: c.codec });
    }));
}

test('recorded files play in Chromium and Firefox from /records/FILE, seeking included', { timeout: CASE_TIMEOUT_MS }, () =>
  withHarness('recording playback', async (h) => {
    assert.ok(playable.length > 0, 'the recording cases ran first');
    const server = await h.startServer();
    const records = path.join(server.dataDir, 'records');
    fs.mkdirSync(records, { recursive: true });
    for (const p of playable) fs.copyFileSync(path.join(p.dir, p.file), path.join(records, p.file));
    for (const kind of ['chromium', 'firefox']) {
      const browser = await h.launch(kind);
      const page = await h.newPage(browser, `player/${kind}`);
      await page.goto(server.httpUrl);
      for (const p of playable) {
        const type = p.codec === 'h264' ? 'video/mp4; codecs="avc1.42E01F, opus"' : 'video/mp4; codecs="vp08.00.31.08, opus"';
        const can = await page.evaluate((t) => document.createElement('video').canPlayType(t), type);
        if (p.codec === 'vp8') console.log(`# vp8-in-mp4 ${kind}: canPlayType says "${can}"`);
        if (p.codec === 'vp8' && !can) continue;
        assert.ok(can, `${kind} plays ${type}`);
        const result = await playToEnd(page, `/records/${p.file}`, { seekToMiddle: true, rate: 4 });
        console.log(`# playback ${kind} ${p.codec}: ${JSON.stringify(result)}`);
        assert.ok(result.duration > 10, `${kind}: ${p.file} is ${result.duration} s long`);
        assert.ok(Math.abs(result.seekedTo - result.duration / 2) < 1.5, `${kind}: seeking lands in the middle (${result.seekedTo})`);
        assert.ok(Math.abs(result.endedAt - result.duration) < 0.5, `${kind}: ended at ${result.endedAt} of ${result.duration}`);
        assert.ok(result.width > 0, `${kind}: pictures decoded`);
      }
      await screenshot(page, `recording-playback-${kind}`);
    }
    for (const p of playable) fs.rmSync(p.dir, { recursive: true, force: true });
  }));

test('a camera resized mid-stream keeps playing in the recording (Chromium H.264), in ffmpeg, Chromium and Firefox', { timeout: CASE_TIMEOUT_MS }, () =>
  withHarness('recording: resolution change', async (h) => {
    const server = await h.startServer({ extraArgs: ['--record-resume-window', '0'] });
    const statics = await h.startStatic();
    const chromium = await h.launch('chromium');
    const alice = await h.newPage(chromium, 'alice/chromium');
    const room = `resize-${Math.random().toString(16).slice(2, 8)}`;
    await alice.goto(`${statics.url}room.html?${new URLSearchParams({
      url: server.wsUrl, user: 'alice', room, strip: 'VP8,VP9,AV1', record: '1',
    })}`);
    const file = await waitRoom(alice, 'alice: PUBLISHING with a record name', OWN_PUBLISHING);
    await sleep(3000);
    const resized = await alice.evaluate(() => window.__app.resize(160, 120));
    assert.equal(resized, '160x120', `the camera now sends 160x120 (${resized})`);
    await sleep(4000);
    assert.equal(await alice.evaluate(() => window.__app.leave()), true);
    const [entry] = await finishedRecordings(server, [file]);
    const sizes = entry.resolutions.map((r) => `${r.width}x${r.height}`);
    console.log(`# resize: resolutions ${JSON.stringify(entry.resolutions)}`);
    assert.ok(sizes.length >= 2 && sizes.includes('160x120') && sizes[0] !== '160x120', `a change to 160x120 is listed: ${sizes}`);
    const mp4 = path.join(server.dataDir, 'records', file);
    decodesClean(mp4);
    const frames = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=width',
      '-of', 'csv=p=0', mp4], { encoding: 'utf8' }).trim().split('\n');
    assert.ok(frames.includes('160'), 'ffmpeg decodes pictures of the new size');
    for (const kind of ['chromium', 'firefox']) {
      const browser = kind === 'chromium' ? chromium : await h.launch(kind);
      const page = await h.newPage(browser, `player/${kind}`);
      await page.goto(server.httpUrl);
      const result = await playToEnd(page, `/records/${file}`, { seekToMiddle: false, rate: 2 });
      console.log(`# resize playback ${kind}: ${JSON.stringify(result)}`);
      assert.ok(Math.abs(result.endedAt - result.duration) < 0.5, `${kind} plays the file to its end: ${JSON.stringify(result)}`);
      assert.ok(result.widths.includes(160), `${kind} shows the new size: ${JSON.stringify(result)}`);
    }
  }));
