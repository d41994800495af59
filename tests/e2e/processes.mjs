// The processes an end-to-end run starts, found by a marker in their environment (the data
// folder the app was given), and the figures the start-up benchmark reads about them. Linux only:
// everything comes from /proc.
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** The ids of the processes whose environment holds `marker` (`NAME=value`), this one excepted. */
export function processesWith(marker) {
  const found = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, 'latin1').split('\0').includes(marker)) found.push(Number(name));
    } catch {
      // Gone already, or not ours to read.
    }
  }
  return found;
}

/**
 * Ends what was started with `marker` in its environment and still runs: a grace period to end
 * by itself, then SIGTERM, then SIGKILL. WebKitWebDriver closes the app when its session ends,
 * but when tauri-driver is stopped first the app (and its engine worker) can outlive it, keeping
 * the test's output pipe open so the runner never finishes.
 */
export async function stopLeftovers(marker) {
  for (const [signal, graceMs] of [
    ['SIGTERM', 5_000],
    ['SIGKILL', 2_000],
  ]) {
    const deadline = Date.now() + graceMs;
    while (processesWith(marker).length > 0 && Date.now() < deadline) await sleep(100);
    const left = processesWith(marker);
    if (left.length === 0) return;
    for (const pid of left) {
      try {
        process.kill(pid, signal);
      } catch {
        // It ended meanwhile.
      }
    }
  }
}

/**
 * Stops a tauri-driver started for the app on `dataDir`, waits for it to exit, then ends the
 * app and its workers if they outlived it (see `stopLeftovers`).
 */
export async function stopDriver(driverProcess, dataDir) {
  driverProcess.kill('SIGTERM');
  await new Promise((done) => (driverProcess.exitCode !== null ? done() : driverProcess.once('exit', done)));
  await stopLeftovers(`CRIA_DATA_DIR=${dataDir}`);
}

/** A process's command line as its arguments (empty when it is gone). */
export function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

// The boot moment on the wall clock, from the seconds since boot (10 ms resolution; /proc/stat's
// btime is whole seconds, too coarse for start-up times).
const bootEpochMs = Date.now() - Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
// USER_HZ: 100 on every Linux this runs on (the kernel's ABI for /proc times).
const ticksPerSecond = 100;

/** When the process started, in epoch milliseconds (10 ms resolution, from /proc). */
export function startedAtMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may hold spaces, sit past the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return bootEpochMs + (Number(fields[19]) / ticksPerSecond) * 1000;
}

/**
 * Resident memory in KiB: `rss` counts every page the process maps (shared library and shared
 * memory pages too, so they count once in each process), `pss` shares them out between the
 * processes mapping them (sums across processes without double counting).
 */
export function memoryKiB(pid) {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN);
  return { rss: field('Rss'), pss: field('Pss') };
}
