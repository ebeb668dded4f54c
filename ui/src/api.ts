// The Rust commands, typed: `commands` and `events` are generated from src-tauri/src/main.rs
// (ui/src/commands.ts) and their types from crates/app/src/dto.rs (ui/src/bindings.ts). Never
// declare a command or a shape here by hand; only the dialog plugin's call is written here.
import { invoke } from "@tauri-apps/api/core";
import type { AppError } from "./bindings";
import { commands, events } from "./commands";

export function isAppError(e: unknown): e is AppError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

/** What an error says to the user: the app's sentence, or the text of anything else. */
export function messageOf(e: unknown): string {
  return isAppError(e) ? e.message : String(e);
}

export const api = {
  ...commands,
  /** The native folder picker (tauri-plugin-dialog); null when the user cancels. */
  pickFolder: (title: string, defaultPath: string) =>
    invoke<string | null>("plugin:dialog|open", {
      options: { directory: true, multiple: false, title, defaultPath },
    }),
  /** The native file picker for one laboratory file; null when the user cancels. */
  pickLabFile: (title: string) =>
    invoke<string | null>("plugin:dialog|open", {
      options: {
        directory: false,
        multiple: false,
        title,
        filters: [
          { name: "FHIR, HL7, CSV, Excel", extensions: ["json", "hl7", "txt", "csv", "xlsx"] },
        ],
      },
    }),
  /** The native file picker for one certificate file (PEM); null when the user cancels. */
  pickCertificate: (title: string) =>
    invoke<string | null>("plugin:dialog|open", {
      options: {
        directory: false,
        multiple: false,
        title,
        filters: [{ name: "PEM", extensions: ["pem", "crt", "cer"] }],
      },
    }),
};

export { events };
