// Generated from src-tauri/src/main.rs by crates/app/src/command_bindings.rs. Do not edit.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { AuditCsvDone, AuditFilterDto, AuditPage, AuditRow, BackupDone, BackupStatusDto, Entry, EnvelopesDto, ExportDone, ExportRequest, FormOversight, FormPage, FormVersionDto, LabApplied, LabPreview, Lang, Printout, Query, QueryStep, Role, SaveReply, ScreeningLog, SessionDto, SetupDone, SetupInput, SignInput, SignatureDto, StudyDto, SubjectMrn, SubjectPage, SubjectRow, SyncDone, SyncProgressDto, SyncStatusDto, User, Welcome } from "./bindings";

/** Every command of the desktop shell, with its arguments and reply. */
export const commands = {
  welcome: (): Promise<Welcome> => invoke<Welcome>("welcome"),
  study: (): Promise<StudyDto> => invoke<StudyDto>("study"),
  setup: (input: SetupInput): Promise<SetupDone> => invoke<SetupDone>("setup", { input }),
  useDemo: (): Promise<Welcome> => invoke<Welcome>("use_demo"),
  login: (user: string, password: string): Promise<SessionDto> => invoke<SessionDto>("login", { user, password }),
  lock: (): Promise<void> => invoke<void>("lock"),
  setLang: (lang: Lang): Promise<SessionDto> => invoke<SessionDto>("set_lang", { lang }),
  setLockMinutes: (minutes: number): Promise<SessionDto> => invoke<SessionDto>("set_lock_minutes", { minutes }),
  printFolder: (): Promise<string | null> => invoke<string | null>("print_folder"),
  setPrintFolder: (folder: string): Promise<SessionDto> => invoke<SessionDto>("set_print_folder", { folder }),
  users: (): Promise<Array<User>> => invoke<Array<User>>("users"),
  addUser: (username: string, name: string, role: Role, password: string): Promise<void> => invoke<void>("add_user", { username, name, role, password }),
  subjects: (): Promise<Array<SubjectRow>> => invoke<Array<SubjectRow>>("subjects"),
  newSubject: (): Promise<string> => invoke<string>("new_subject"),
  subject: (subject: string): Promise<SubjectPage> => invoke<SubjectPage>("subject", { subject }),
  nextDailyLog: (subject: string): Promise<FormPage> => invoke<FormPage>("next_daily_log", { subject }),
  randomize: (subject: string): Promise<SubjectPage> => invoke<SubjectPage>("randomize", { subject }),
  form: (subject: string, key: string): Promise<FormPage> => invoke<FormPage>("form", { subject, key }),
  formDefinition: (subject: string, key: string): Promise<FormVersionDto> => invoke<FormVersionDto>("form_definition", { subject, key }),
  unaskedItems: (key: string, entries: Array<Entry>): Promise<Array<string>> => invoke<Array<string>>("unasked_items", { key, entries }),
  saveForm: (subject: string, key: string, entries: Array<Entry>, reason: string | null, confirm: boolean): Promise<SaveReply> => invoke<SaveReply>("save_form", { subject, key, entries, reason, confirm }),
  saveDraft: (subject: string, key: string, entries: Array<Entry>): Promise<void> => invoke<void>("save_draft", { subject, key, entries }),
  discardDraft: (subject: string, key: string): Promise<void> => invoke<void>("discard_draft", { subject, key }),
  labPreview: (path: string, mapping: string | null): Promise<LabPreview> => invoke<LabPreview>("lab_preview", { path, mapping }),
  labApply: (path: string, mapping: string | null, sha256: string, accept: Array<string>, reject: Array<string>, reason: string | null, confirm: boolean): Promise<LabApplied> => invoke<LabApplied>("lab_apply", { path, mapping, sha256, accept, reject, reason, confirm }),
  subjectMrns: (): Promise<Array<SubjectMrn>> => invoke<Array<SubjectMrn>>("subject_mrns"),
  setSubjectMrn: (subject: string, mrn: string): Promise<Array<SubjectMrn>> => invoke<Array<SubjectMrn>>("set_subject_mrn", { subject, mrn }),
  history: (subject: string, key: string, item: string): Promise<Array<AuditRow>> => invoke<Array<AuditRow>>("history", { subject, key, item }),
  printBlank: (form: string | null): Promise<Printout> => invoke<Printout>("print_blank", { form }),
  screeningLog: (): Promise<ScreeningLog> => invoke<ScreeningLog>("screening_log"),
  printScreeningLog: (): Promise<Printout> => invoke<Printout>("print_screening_log"),
  printSubject: (subject: string): Promise<Printout> => invoke<Printout>("print_subject", { subject }),
  defaultExportFolder: (): Promise<string> => invoke<string>("default_export_folder"),
  export: (request: ExportRequest): Promise<ExportDone> => invoke<ExportDone>("export", { request }),
  formOversight: (subject: string, key: string): Promise<FormOversight> => invoke<FormOversight>("form_oversight", { subject, key }),
  queries: (subject: string | null): Promise<Array<Query>> => invoke<Array<Query>>("queries", { subject }),
  raiseQuery: (subject: string, key: string, item: string, text: string): Promise<FormOversight> => invoke<FormOversight>("raise_query", { subject, key, item, text }),
  queryStep: (id: string, step: QueryStep, text: string): Promise<void> => invoke<void>("query_step", { id, step, text }),
  auditReview: (filter: AuditFilterDto): Promise<AuditPage> => invoke<AuditPage>("audit_review", { filter }),
  auditCsv: (filter: AuditFilterDto): Promise<AuditCsvDone> => invoke<AuditCsvDone>("audit_csv", { filter }),
  syncStatus: (): Promise<SyncStatusDto> => invoke<SyncStatusDto>("sync_status"),
  envelopes: (): Promise<EnvelopesDto> => invoke<EnvelopesDto>("envelopes"),
  loadLease: (blocks: number): Promise<EnvelopesDto> => invoke<EnvelopesDto>("load_lease", { blocks }),
  syncOnline: (): Promise<boolean> => invoke<boolean>("sync_online"),
  enrol: (server: string, code: string, caFile: string | null): Promise<SyncStatusDto> => invoke<SyncStatusDto>("enrol", { server, code, caFile }),
  setSiteCa: (caFile: string): Promise<SyncStatusDto> => invoke<SyncStatusDto>("set_site_ca", { caFile }),
  syncNow: (): Promise<SyncDone> => invoke<SyncDone>("sync_now"),
  resolveConflict: (subject: string, form: string, item: string, value: string, reason: string): Promise<SyncStatusDto> => invoke<SyncStatusDto>("resolve_conflict", { subject, form, item, value, reason }),
  verifyForm: (subject: string, key: string): Promise<FormOversight> => invoke<FormOversight>("verify_form", { subject, key }),
  sign: (input: SignInput): Promise<SignatureDto> => invoke<SignatureDto>("sign", { input }),
  lockForm: (subject: string, key: string, reason: string, lock: boolean): Promise<FormOversight> => invoke<FormOversight>("lock_form", { subject, key, reason, lock }),
  backup: (folder: string): Promise<BackupDone> => invoke<BackupDone>("backup", { folder }),
  backupStatus: (): Promise<BackupStatusDto> => invoke<BackupStatusDto>("backup_status"),
  setBackupReminderHours: (hours: number): Promise<BackupStatusDto> => invoke<BackupStatusDto>("set_backup_reminder_hours", { hours }),
  uiReady: (): Promise<void> => invoke<void>("ui_ready"),
};

/** Every event the shell sends, with its payload. */
export const events = {
  syncProgress: (handler: (payload: SyncProgressDto) => void): Promise<UnlistenFn> =>
    listen<SyncProgressDto>("sync-progress", (e) => handler(e.payload)),
};
