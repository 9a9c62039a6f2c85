// cliui (yargs' layout engine) ships no types; help.ts needs only its renderer's prototype.
declare module 'cliui' {
  export interface Line {
    text: string;
    span?: boolean;
    hidden?: boolean;
  }
  export interface UI {
    renderInline(source: string, previousLine: Line): string;
  }
  export default function cliui(opts?: { width?: number; wrap?: boolean }): UI;
}
