import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isErrno } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fsutil.ts';
import { acquireLock } from './lock.ts';

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
  ) {}

  private async read(): Promise<Record<string, V>> {
    try {
      const parsed = JSON.parse(await fs.readFile(this.file, 'utf8')) as unknown;
      return parsed && typeof parsed === 'object' ? (parsed as Record<string, V>) : {};
    } catch (err) {
      // Missing, or damaged by something outside hoard: start empty (everything is re-verified).
      if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return {};
      throw err;
    }
  }

  async get(key: string): Promise<V | undefined> {
    this.data ??= await this.read();
    return this.changes.has(key) ? this.changes.get(key) : this.data[key];
  }

  set(key: string, value: V | undefined): void {
    this.changes.set(key, value);
  }

  get dirty(): boolean {
    return this.changes.size > 0;
  }

  async flush(): Promise<void> {
    if (this.changes.size === 0) return;
    const release = await acquireLock(this.lockFile);
    try {
      const current = await this.read();
      for (const [k, v] of this.changes) {
        if (v === undefined) delete current[k];
        else current[k] = v;
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
