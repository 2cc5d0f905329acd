// Starts the webcall server binary on free loopback ports and stops it again.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { webcallBin } from './paths.mjs';

const HOST = '127.0.0.1';

function tcpPortFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: HOST, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function udpPortFree(port) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', () => {
      sock.close();
      resolve(false);
    });
    sock.bind({ address: HOST, port, exclusive: true }, () => sock.close(() => resolve(true)));
  });
}

/** A port the OS hands out as free for TCP on 127.0.0.1. */
export function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host: HOST, port: 0, exclusive: true }, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A base port such that base..base+span-1 are free for both UDP and TCP on 127.0.0.1. */
export async function freeMediaBase(span = 4) {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    let ok = true;
    for (let p = base; p < base + span && ok; p++) {
      ok = (await udpPortFree(p)) && (await tcpPortFree(p));
    }
    if (ok) return base;
  }
  throw new Error('no free media port range found');
}

async function distinctTcpPorts(n, avoid) {
  const ports = new Set();
  while (ports.size < n) {
    const p = await freeTcpPort();
    if (!avoid(p)) ports.add(p);
  }
  return [...ports];
}

/**
 * Starts the server and waits until GET /health answers 200.
 * Returns {httpPort, httpsPort, mediaPort, httpUrl, wsUrl, log(), stop()}.
 * `reuse`: a stopped server whose ports and arguments the new one takes (a restart, as seen by
 * clients that stay connected to the same address).
 */
export async function startServer({ workers = 1, extraArgs = [], healthTimeoutMs = 30000, reuse = null, mediaIp = HOST } = {}) {
  const bin = webcallBin();
  if (!fs.existsSync(bin)) {
    throw new Error(`webcall binary not found at ${bin} (build it with "cargo build --bin webcall" or set WEBCALL_BIN)`);
  }
  const mediaPort = reuse ? reuse.mediaPort : await freeMediaBase(Math.max(4, workers + 2));
  const [httpPort, httpsPort] = reuse
    ? [reuse.httpPort, reuse.httpsPort]
    : await distinctTcpPorts(2, (p) => p >= mediaPort && p < mediaPort + 8);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webcall-data-'));
  const args = reuse
    ? reuse.args.map((a) => (a === reuse.dataDir ? dataDir : a))
    : [
      '--http', `${HOST}:${httpPort}`,
      '--https', `${HOST}:${httpsPort}`,
      '--media-ip', mediaIp,
      '--media-port', String(mediaPort),
      '--workers', String(workers),
      '--data-dir', dataDir,
      // Parallel servers cannot all take RTMP's default port: off unless a test asks.
      ...(extraArgs.includes('--rtmp') ? [] : ['--rtmp', 'off']),
      ...extraArgs,
    ];
  const lines = [];
  const started = Date.now();
  const stamp = () => `+${((Date.now() - started) / 1000).toFixed(3)}s`;
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', NO_COLOR: '1' },
  });
  const collect = (stream, tag) => {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      rest += chunk;
      const parts = rest.split('\n');
      rest = parts.pop();
      for (const l of parts) lines.push(`${stamp()} ${tag} ${l}`);
    });
    stream.on('end', () => {
      if (rest) lines.push(`${stamp()} ${tag} ${rest}`);
    });
  };
  collect(child.stdout, '[out]');
  collect(child.stderr, '[err]');

  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      lines.push(`${stamp()} [exit] code=${code} signal=${signal}`);
      resolve(exited);
    });
  });
  child.once('error', (err) => {
    lines.push(`${stamp()} [spawn error] ${err.message}`);
  });

  const server = {
    bin,
    args,
    httpPort,
    httpsPort,
    mediaPort,
    dataDir,
    pid: child.pid,
    httpUrl: `http://${HOST}:${httpPort}/`,
    wsUrl: `ws://${HOST}:${httpPort}/`,
    get exited() {
      return exited;
    },
    log() {
      return lines.join('\n');
    },
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => {
          if (!exited) child.kill('SIGKILL');
        }, 5000);
        await exitPromise;
        clearTimeout(t);
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + healthTimeoutMs;
  let lastError = 'no answer';
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(`webcall exited before /health answered (code ${exited.code}, signal ${exited.signal})\n` +
        `command: ${bin} ${args.join(' ')}\n--- server log ---\n${server.log()}`);
    }
    try {
      const res = await fetch(`http://${HOST}:${httpPort}/health`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return server;
      lastError = `HTTP ${res.status}`;
    } catch (err) {
      lastError = err.cause ? err.cause.code || err.cause.message : err.message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await server.stop();
  throw new Error(`webcall /health did not answer 200 within ${healthTimeoutMs} ms (last: ${lastError})\n` +
    `command: ${bin} ${args.join(' ')}\n--- server log ---\n${server.log()}`);
}
