// Typed calls into the Rust commands (src-tauri/src/main.rs). Types come from bindings.ts,
// generated from crates/app/src/dto.rs: never declare a shape here by hand.
import { invoke } from "@tauri-apps/api/core";
import type {
  AppError,
  AuditCsvDone,
  AuditFilterDto,
  AuditPage,
  BackupDone,
  BackupStatusDto,
  Entry,
  ExportDone,
  ExportRequest,
  FormOversight,
  FormPage,
  HistoryRow,
  QueryDto,
  Printout,
  SaveReply,
  SessionDto,
  SetupDone,
  SetupInput,
  SignatureDto,
  SignInput,
  StudyDto,
  SubjectPage,
  SyncDone,
  SyncStatusDto,
  SubjectRow,
  Welcome,
} from "./bindings";

export function isAppError(e: unknown): e is AppError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

/** What an error says to the user: the app's sentence, or the text of anything else. */
export function messageOf(e: unknown): string {
  return isAppError(e) ? e.message : String(e);
}

export const api = {
  welcome: () => invoke<Welcome>("welcome"),
  study: () => invoke<StudyDto>("study"),
  setup: (input: SetupInput) => invoke<SetupDone>("setup", { input }),
  useDemo: () => invoke<Welcome>("use_demo"),
  login: (user: string, password: string) => invoke<SessionDto>("login", { user, password }),
  lock: () => invoke<void>("lock"),
  setLang: (lang: string) => invoke<SessionDto>("set_lang", { lang }),
  setLockMinutes: (minutes: number) => invoke<SessionDto>("set_lock_minutes", { minutes }),
  users: () => invoke<string[][]>("users"),
  addUser: (username: string, name: string, role: string, password: string) =>
    invoke<void>("add_user", { username, name, role, password }),
  subjects: () => invoke<SubjectRow[]>("subjects"),
  newSubject: () => invoke<string>("new_subject"),
  subject: (subject: string) => invoke<SubjectPage>("subject", { subject }),
  randomize: (subject: string) => invoke<SubjectPage>("randomize", { subject }),
  form: (subject: string, key: string) => invoke<FormPage>("form", { subject, key }),
  nextDailyLog: (subject: string) => invoke<FormPage>("next_daily_log", { subject }),
  saveForm: (
    subject: string,
    key: string,
    entries: Entry[],
    reason: string | null,
    confirm: boolean,
  ) => invoke<SaveReply>("save_form", { subject, key, entries, reason, confirm }),
  saveDraft: (subject: string, key: string, entries: Entry[]) =>
    invoke<void>("save_draft", { subject, key, entries }),
  discardDraft: (subject: string, key: string) => invoke<void>("discard_draft", { subject, key }),
  history: (subject: string, key: string, item: string) =>
    invoke<HistoryRow[]>("history", { subject, key, item }),
  printBlank: (form: string | null) => invoke<Printout>("print_blank", { form }),
  printSubject: (subject: string) => invoke<Printout>("print_subject", { subject }),
  defaultExportFolder: () => invoke<string>("default_export_folder"),
  /** The native folder picker (tauri-plugin-dialog); null when the user cancels. */
  pickFolder: (title: string, defaultPath: string) =>
    invoke<string | null>("plugin:dialog|open", {
      options: { directory: true, multiple: false, title, defaultPath },
    }),
  exportData: (request: ExportRequest) => invoke<ExportDone>("export", { request }),
  formOversight: (subject: string, key: string) =>
    invoke<FormOversight>("form_oversight", { subject, key }),
  queries: (subject: string | null) => invoke<QueryDto[]>("queries", { subject }),
  raiseQuery: (subject: string, key: string, item: string, text: string) =>
    invoke<FormOversight>("raise_query", { subject, key, item, text }),
  queryStep: (id: string, step: string, text: string) =>
    invoke<void>("query_step", { id, step, text }),
  verifyForm: (subject: string, key: string) =>
    invoke<FormOversight>("verify_form", { subject, key }),
  sign: (input: SignInput) => invoke<SignatureDto>("sign", { input }),
  lockForm: (subject: string, key: string, reason: string, lock: boolean) =>
    invoke<FormOversight>("lock_form", { subject, key, reason, lock }),
  backup: (folder: string) => invoke<BackupDone>("backup", { folder }),
  backupStatus: () => invoke<BackupStatusDto>("backup_status"),
  setBackupReminderHours: (hours: number) =>
    invoke<BackupStatusDto>("set_backup_reminder_hours", { hours }),
  auditReview: (filter: AuditFilterDto) => invoke<AuditPage>("audit_review", { filter }),
  auditCsv: (filter: AuditFilterDto) => invoke<AuditCsvDone>("audit_csv", { filter }),
  syncStatus: () => invoke<SyncStatusDto>("sync_status"),
  syncOnline: () => invoke<boolean>("sync_online"),
  enrol: (server: string, code: string) => invoke<SyncStatusDto>("enrol", { server, code }),
  syncNow: () => invoke<SyncDone>("sync_now"),
  uiReady: () => invoke<void>("ui_ready"),
};
