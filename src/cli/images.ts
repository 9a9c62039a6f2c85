import type { EngineChoice } from '../engine/types.ts';
import type { ImageSupport } from '../sync/images.ts';

/**
 * The container side, for commands that may need it. Nothing is imported or run until an
 * artifact with an `image` asks: a sync without images never loads execa or spawns an engine.
 */
export function imageSupport(choice: EngineChoice, env: Record<string, string | undefined>): ImageSupport {
  const engineModule = () => import('../engine/index.ts');
  let engine: ReturnType<ImageSupport['engine']> | null = null;
  return {
    engine: () => (engine ??= engineModule().then((m) => m.selectEngine(choice, m.execaRunner, { env }))),
    classify: async (file, shown) => (await engineModule()).classifyArchive(file, shown),
  };
}
