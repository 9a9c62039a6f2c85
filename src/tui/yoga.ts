// Ink lays out with yoga-layout, whose entry module awaits its WebAssembly at the top level,
// which a CommonJS bundle cannot do. In the built CLI, `yoga-layout` (as Ink imports it)
// resolves to this module instead (scripts/build.mjs), and the TUI awaits initYoga() before
// Ink lays out anything. Run from source (tests), Ink uses yoga-layout itself.
import { loadYoga } from 'yoga-layout/load';

type Yoga = Awaited<ReturnType<typeof loadYoga>>;
let yoga: Yoga | undefined;
let loading: Promise<void> | undefined;

export function initYoga(): Promise<void> {
  loading ??= loadYoga().then((y) => {
    yoga = y;
  });
  return loading;
}

const Yoga = new Proxy({} as Yoga, {
  get(_target, key) {
    if (!yoga) throw new Error('yoga-layout was used before initYoga() finished');
    return yoga[key as keyof Yoga];
  },
});
export default Yoga;
export * from 'yoga-layout/load';
