// The two Ink roots. Each reads its store and forwards keys; neither decides anything.
import { useInput } from 'ink';
import { useSyncExternalStore } from 'react';
import { LiveSync, Screen } from './components.tsx';
import type { LiveAction, LiveState } from './live.ts';
import type { Action, UiState } from './state.ts';
import type { Store } from './store.ts';

export function UiApp({ store, color }: { readonly store: Store<UiState, Action>; readonly color: boolean }) {
  const state = useSyncExternalStore(store.subscribe, store.getState);
  useInput((input, key) => store.dispatch({ type: 'key', input, key, at: Date.now() }));
  return <Screen state={state} color={color} />;
}

export function LiveApp({ store, color }: { readonly store: Store<LiveState, LiveAction>; readonly color: boolean }) {
  const state = useSyncExternalStore(store.subscribe, store.getState);
  return <LiveSync state={state} color={color} />;
}
