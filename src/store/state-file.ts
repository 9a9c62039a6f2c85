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
  // (A Map, not the parsed object: looking up 10,000 keys made on the fly, a blob's hex sliced
  // from its digest, costs a third of the time in a Map.)
  private data: Map<string, V> | null = null;
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
  private read(): Map<string, V> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8')) as unknown;
    } catch (err) {
      // Missing, or damaged by something outside hoard: start empty (everything is re-verified).
      if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return new Map();
      throw err;
    }
    const out = new Map<string, V>();
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      for (const k in parsed) out.set(k, (parsed as Record<string, V>)[k]!);
    }
    return out;
  }

  get(key: string): V | undefined {
    this.data ??= this.read();
    return this.changes.size > 0 && this.changes.has(key) ? this.changes.get(key) : this.data.get(key);
  }

  /** Every key, this process's changes included. */
  keys(): string[] {
    this.data ??= this.read();
    if (this.changes.size === 0) return [...this.data.keys()];
    const all = new Set(this.data.keys());
    for (const [k, v] of this.changes) {
      if (v === undefined) all.delete(k);
      else all.add(k);
    }
    return [...all];
  }

  /** Every key and value, this process's changes included. */
  entries(): Array<[string, V]> {
    this.data ??= this.read();
    const all = new Map(this.data);
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
    return this.data.get(key);
  }

  set(key: string, value: V | undefined): void {
    this.changes.set(key, value);
  }

  /**
   * Merges this process's changes into the file. One write at a time: callers that come while
   * one runs share the next, which takes every change made until it starts (a thousand
   * downloads that each record their URL write the file a few times, not a thousand).
   */
  flush(): Promise<void> {
    if (!this.writing && !this.queued) return this.startWrite();
    // (Either is set: a queued write is shared; else one is running, and the next follows it.)
    this.queued ??= this.writing!.catch(() => {}).then(() => {
      this.queued = null;
      return this.startWrite();
    });
    return this.queued;
  }

  private writing: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  private startWrite(): Promise<void> {
    const w = this.write().finally(() => {
      if (this.writing === w) this.writing = null;
    });
    this.writing = w;
    return w;
  }

  private async write(): Promise<void> {
    if (this.changes.size === 0) return;
    const release = await acquireLock(this.lockFile, this.wait);
    try {
      // The changes this write covers: one set while it runs waits for the next.
      const batch = [...this.changes];
      const current = this.read();
      for (const [k, v] of batch) {
        if (v === undefined) current.delete(k);
        else current.set(k, this.merge ? this.merge(current.get(k), v) : v);
      }
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      await writeFileAtomic(this.file, `${JSON.stringify(Object.fromEntries(current))}\n`);
      this.data = current;
      for (const [k, v] of batch) if (this.changes.has(k) && this.changes.get(k) === v) this.changes.delete(k);
    } finally {
      await release();
    }
  }
}
