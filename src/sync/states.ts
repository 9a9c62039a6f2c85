// An artifact's state in words: one vocabulary for `hoard status`, `sync --dry-run`, `hoard ui`
// and the docs. Pure; the TUI bundle uses it too.
import type { SyncEvent } from './events.ts';

export type ArtifactState =
  | 'in sync'
  | 'not downloaded'
  | 'not linked'
  | 'corrupt'
  | 'image missing'
  | 'image stale'
  | 'image unknown'
  | 'not an image archive'
  | 'unlocked'
  | 'conflict';

type PlanEvent = Extract<SyncEvent, { type: 'plan' }>;

/** The state a plan puts an artifact in, most serious first, and why (when the plan says). */
export function stateOf(p: PlanEvent): { state: ArtifactState; detail?: string } {
  const at = (state: ArtifactState, detail?: string) => (detail ? { state, detail } : { state });
  if (p.output === 'conflict') return at('conflict', p.outputReason);
  // No sync can fix it (the file is what hoard.json locked): named before what sync can.
  if (p.image === 'not-archive') return at('not an image archive', p.imageReason);
  if (p.blob === 'refetch') return at('corrupt', p.blobReason);
  if (p.blob === 'lock') return at('unlocked', 'no digest yet: sync downloads it and records it');
  if (p.blob === 'fetch') return at('not downloaded');
  if (p.blob === 'force') return at('not downloaded', '--force: downloaded again');
  if (p.blob === 'adopt') return at('not downloaded', 'the output is intact: sync copies it back into the store, no download');
  if (p.output !== 'none') return at('not linked', p.outputReason);
  if (p.image === 'reimport') return at('image stale', p.imageReason ?? `${p.imageRef} was built from another file`);
  if (p.image === 'force') return at('image stale', '--force: imported again');
  if (p.image === 'import') return at('image missing', p.imageRef);
  if (p.image === 'unavailable') return at('image unknown', p.imageReason);
  return at('in sync');
}
