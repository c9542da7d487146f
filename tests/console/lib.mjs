// tests/console/lib.mjs - harness of the console's browser tests: starts real origin processes, a
// real gslbd with a fresh SQLite store and the fetched GeoLite2 City database, and Debian's
// chromium through playwright-core (never a downloaded browser). Prints TAP, which
// tools/run-tests.sh totals with the C tests.
//
// Everything it starts it stops by PID, and every wait is bounded: a hung gslbd or browser ends
// the test with "not ok" lines instead of hanging the build. Screenshots go to
// $GSLB_BUILD/artifacts/console/.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BUILD = path.resolve(ROOT, process.env.GSLB_BUILD || 'build');
export const ARTIFACTS = path.join(BUILD, 'artifacts', 'console');
export const CITY_DB = path.join(ROOT, 'data/geoip/GeoLite2-City.mmdb');
export const CHROMIUM = process.env.GSLB_CHROMIUM || '/usr/bin/chromium';

const children = new Set();
const tempDirs = [];
let browserContext = null;

export function log(...args) {
    console.log('#', ...args);
}

// A port the kernel says is free now (a small race with other processes, fine on loopback).
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

export function tempDir(prefix) {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    tempDirs.push(dir);
    return dir;
}

export function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
}

// Polls <fn> until it returns a truthy value or <ms> pass; returns the value or throws.
export async function until(what, fn, ms = 10000, every = 100) {
    const end = Date.now() + ms;
    let last;
    for (;;) {
        try {
            const v = await fn();
            if (v) return v;
        } catch (e) {
            last = e;
        }
        if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
        await sleep(every);
    }
}

function track(child, name) {
    children.add(child);
    child.on('exit', () => children.delete(child));
    child.name = name;
    return child;
}

// Starts tests/proxy/origin NAME and resolves to { child, port, address } once it listens.
export function startOrigin(name) {
    const bin = path.join(BUILD, 'tests/proxy/origin');
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run make first`);
    const child = track(spawn(bin, [name], { stdio: ['ignore', 'pipe', 'inherit'] }), `origin ${name}`);
    return new Promise((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`origin ${name} printed no port within 5 s`)), 5000);
        child.stdout.on('data', (d) => {
            out += d;
            const m = /(\d+)\s*$/m.exec(out);
            if (m && out.includes('\n')) {
                clearTimeout(timer);
                const port = Number(m[1]);
                resolve({ child, port, address: `127.0.0.1:${port}` });
            }
        });
        child.on('exit', (code) => reject(new Error(`origin ${name} exited with ${code}`)));
    });
}

export function gslbctl(db, args, input) {
    const r = spawnSync(path.join(BUILD, 'gslbctl'), ['--db', db, ...args], { input, encoding: 'utf8', timeout: 20000 });
    if (r.status !== 0) throw new Error(`gslbctl ${args.join(' ')}: status ${r.status}: ${r.stderr}`);
    return r.stdout;
}

// Starts gslbd on <topology> (a document for gslbctl import). Resolves to
// { base, proxy, db, child, output() } once the admin server answers.
export async function startGslbd(topology, extra = []) {
    if (!existsSync(CITY_DB)) throw new Error(`${CITY_DB} is missing: run make deps`);
    const dir = tempDir('gslb-console-');
    const db = path.join(dir, 'gslb.db');
    gslbctl(db, ['import', '-'], JSON.stringify(topology));
    const [adminPort, proxyPort] = [await freePort(), await freePort()];
    const args = ['--db', db, '--geoip', CITY_DB, '--listen', `127.0.0.1:${proxyPort}`, '--admin-listen', `127.0.0.1:${adminPort}`,
        '--metrics-listen', '', '--access-log', '', '--workers', '1', '--health-interval', '300ms', '--health-timeout', '250ms',
        '--health-rise', '1', '--health-fall', '2', '--failback-holddown', '1s', ...extra];
    let output = '';
    const child = track(spawn(path.join(BUILD, 'gslbd'), args, { stdio: ['ignore', 'pipe', 'pipe'] }), 'gslbd');
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    let exited = null;
    child.on('exit', (code, sig) => (exited = `exited with ${code ?? sig}`));
    const base = `http://127.0.0.1:${adminPort}`;
    await until('gslbd admin server', async () => {
        if (exited) throw new Error(`gslbd ${exited}: ${output.slice(-2000)}`);
        const r = await fetch(`${base}/api/v1/setup`, { signal: AbortSignal.timeout(1000) });
        return r.ok;
    }, 15000, 100).catch((e) => {
        throw new Error(`${e.message}\n${output.slice(-2000)}`);
    });
    return { base, proxy: `http://127.0.0.1:${proxyPort}`, db, child, output: () => output };
}

// Launches Debian's chromium, headless, with a fresh profile. Collects console errors and CSP
// violations so a test can assert there were none.
export async function launchBrowser() {
    const { chromium } = await import('playwright-core').catch((e) => {
        throw new Error(`playwright-core is missing (run make deps, which runs npm ci): ${e.message}`);
    });
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (run make deps, which installs Debian's chromium)`);
    const profile = tempDir('gslb-chromium-');
    browserContext = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        viewport: { width: 1280, height: 860 },
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
            '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
        timeout: 20000,
    });
    return browserContext;
}

export function watchPage(page, problems) {
    page.setDefaultTimeout(10000);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
        // HTTP errors the tests provoke (401 before logging in, refused edits) are logged by the
        // browser as failed resources; the tests check those answers themselves.
        if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
}

export async function screenshot(page, name) {
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = path.join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
}

// TAP: test(name, fn) records; run() executes them in order and prints the plan and results.
const tests = [];
export function test(name, fn) {
    tests.push({ name, fn });
}

export async function run({ timeoutMs = 90000 } = {}) {
    const killer = setTimeout(() => {
        console.log(`not ok ${tests.length + 1} - the whole test finished within ${timeoutMs} ms`);
        cleanup().finally(() => process.exit(1));
    }, timeoutMs);
    console.log(`1..${tests.length}`);
    let failed = 0;
    let n = 0;
    for (const t of tests) {
        n++;
        const started = Date.now();
        try {
            await t.fn();
            console.log(`ok ${n} - ${t.name} (${Date.now() - started} ms)`);
        } catch (e) {
            failed++;
            console.log(`not ok ${n} - ${t.name}`);
            for (const line of String((e && e.stack) || e).split('\n').slice(0, 12)) console.log(`#   ${line}`);
        }
    }
    clearTimeout(killer);
    await cleanup();
    process.exit(failed ? 1 : 0);
}

// Stops the browser and every process this test started (by PID: SIGTERM, then SIGKILL after 5 s).
export async function cleanup() {
    if (browserContext) {
        const ctx = browserContext;
        browserContext = null;
        await Promise.race([ctx.close().catch(() => {}), sleep(5000)]);
    }
    const waits = [];
    for (const child of children) {
        waits.push(new Promise((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const t = setTimeout(() => {
                try {
                    process.kill(child.pid, 'SIGKILL');
                } catch {
                    /* already gone */
                }
                resolve();
            }, 5000);
            child.once('exit', () => {
                clearTimeout(t);
                resolve();
            });
            try {
                process.kill(child.pid, 'SIGTERM');
            } catch {
                clearTimeout(t);
                resolve();
            }
        }));
    }
    await Promise.all(waits);
    for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function writeArtifact(name, text) {
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(path.join(ARTIFACTS, name), text);
}

export function assert(cond, message) {
    if (!cond) throw new Error(`assertion failed: ${message}`);
}
