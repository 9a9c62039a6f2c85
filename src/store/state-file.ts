import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { isErrno } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fsutil.ts';
import { acquireLock, type LockWait } from './lock.ts';

/**
 * A small JSON map shared by every process using the store. Changes are kept in
 * memory and merged into the file on `flush` (under a lock), so two syncs that record
 * different entries do not lose each other's.
 */
export class StateFile<V> {
  private data: Record<string, V> | null = null;
  private readonly changes = new Map<string, V | undefined>();

  constructor(
    private readonly file: string,
    private readonly lockFile: string,
    /** How a value set here combines with the one in the file at flush (default: this one wins). */
    private readonly merge?: (inFile: V | undefined, mine: V) => V,
    /** How a wait for the lock ends (Ctrl-C, --lock-timeout). */
    private readonly wait: LockWait = {},
  ) {}

  // Synchronous: a few kilobytes read once per run, before any parallel work starts.
  private read(): Record<string, V> {
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as unknown;
      return parsed && typeof parsed === 'object' ? (parsed as Record<string, V>) : {};
    } catch (err) {
      // Missing, or damaged by something outside hoard: start empty (everything is re-verified).
      if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return {};
      throw err;
    }
  }

  get(key: string): V | undefined {
    this.data ??= this.read();
    return this.changes.size > 0 && this.changes.has(key) ? this.changes.get(key) : this.data[key];
  }

  /** Every key, this process's changes included. */
  keys(): string[] {
    this.data ??= this.read();
    if (this.changes.size === 0) return Object.keys(this.data);
    const all = new Set(Object.keys(this.data));
    for (const [k, v] of this.changes) {
      if (v === undefined) all.delete(k);
      else all.add(k);
    }
    return [...all];
  }

  /** Every key and value, this process's changes included. */
  entries(): Array<[string, V]> {
    this.data ??= this.read();
    const all = new Map(Object.entries(this.data));
    for (const [k, v] of this.changes) {
      if (v === undefined) all.delete(k);
      else all.set(k, v);
    }
    return [...all];
  }

  /** The value in the file now (another process may have written it since this one read it). */
  reread(key: string): V | undefined {
    if (this.changes.has(key)) return this.changes.get(key);
    this.data = this.read();
    return this.data[key];
  }

  set(key: string, value: V | undefined): void {
    this.changes.set(key, value);
  }

  async flush(): Promise<void> {
    if (this.changes.size === 0) return;
    const release = await acquireLock(this.lockFile, this.wait);
    try {
      const current = this.read();
      for (const [k, v] of this.changes) {
        if (v === undefined) delete current[k];
        else current[k] = this.merge ? this.merge(current[k], v) : v;
      }
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      await writeFileAtomic(this.file, `${JSON.stringify(current)}\n`);
      this.data = current;
      this.changes.clear();
    } finally {
      await release();
    }
  }
}
