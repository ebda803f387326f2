// Shared pieces of the headless-Chromium tests: where things are, free ports, starting and
// stopping the processes under test, and the browser.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
const TARGET_DIR = process.env.CARGO_TARGET_DIR || path.join(REPO, 'target');
export const MENSHEN_BIN = process.env.MENSHEN_BIN || path.join(TARGET_DIR, 'debug', 'menshen');
export const STANDIN_BIN = process.env.HIPKI_STANDIN_BIN || path.join(TARGET_DIR, 'debug', 'hipki-standin');
export const OUTPUT_DIR = path.join(process.env.MENSHEN_TEST_OUTPUT || path.join(REPO, 'test-output'), 'e2e');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];
export const STARTUP_TIMEOUT_MS = 60_000;

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Spawns `command` and resolves with `parse(stdout)` once that returns a value. Rejects, with
 * everything the process printed, if that takes longer than STARTUP_TIMEOUT_MS or the process
 * exits first. The child is killed when the test process exits, whatever happens.
 */
export function startProcess(label, command, args, parse) {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  process.on('exit', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const ready = new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(
        new Error(
          `${label} did not start: ${why}\ncommand: ${command} ${args.join(' ')}\n` +
            `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr.slice(-4000)}`,
        ),
      );
    };
    const timer = setTimeout(() => fail(`not ready within ${STARTUP_TIMEOUT_MS / 1000} s`), STARTUP_TIMEOUT_MS);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const value = settled ? undefined : parse(stdout);
      if (value !== undefined && value !== null) {
        settled = true;
        clearTimeout(timer);
        resolve(value);
      }
    });
    child.on('error', (err) => fail(`spawn failed: ${err.message}`));
    child.on('exit', (code, signal) => fail(`process exited early (code ${code}, signal ${signal})`));
  });
  return { child, ready, output: () => ({ stdout, stderr }) };
}

/** Stops a child: SIGTERM, then SIGKILL if it has not exited after 5 s. */
export async function stopProcess(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** The demo's printed URL and accounts, once all are on stdout. */
export function parseDemo(stdout) {
  const open = stdout.match(/^\s*Open:\s+(\S+)/m);
  const staff = stdout.match(/^\s*Staff:\s+(\S+)\s+\/\s+(\S+)\s*$/m);
  const aa = stdout.match(/^\s*AA:\s+(\S+)\s+\/\s+(\S+)\s*$/m);
  if (!(open && staff && aa)) return undefined;
  return {
    url: open[1],
    staff: { username: staff[1], password: staff[2] },
    aa: { username: aa[1], password: aa[2] },
  };
}

/**
 * The directory for one test file's screenshots, `$MENSHEN_TEST_OUTPUT/e2e/<name>/`, created:
 * each file has its own, because the files run at the same time.
 */
export function outputDir(name) {
  const dir = path.join(OUTPUT_DIR, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Debian's Chromium, headless, never a downloaded browser. */
export async function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}
