// Generated from crates/app/src/dto.rs by crates/app/src/bindings.rs. Do not edit.

export type Txt = { 
/**
 * English.
 */
en: string, 
/**
 * Chinese.
 */
zh: string, };

export type CodeDto = { 
/**
 * Stored code.
 */
code: string, 
/**
 * Label.
 */
label: Txt, };

export type RangeDto = { 
/**
 * Lowest.
 */
min: string, 
/**
 * Highest.
 */
max: string, };

export type ConditionDto = { 
/**
 * Item of the same form.
 */
item: string, 
/**
 * Codes.
 */
is: Array<string>, };

export type ItemKind = "integer" | "decimal" | "date" | "date_time" | "choice" | "multi_choice" | "text";

export type ItemDto = { 
/**
 * Id.
 */
id: string, 
/**
 * Section id.
 */
section: string, 
/**
 * Label.
 */
label: Txt, 
/**
 * Help.
 */
help: Txt | null, 
/**
 * Kind of answer.
 */
kind: ItemKind, 
/**
 * Unit.
 */
unit: string | null, 
/**
 * Possible range.
 */
hard: RangeDto | null, 
/**
 * Usual range.
 */
soft: RangeDto | null, 
/**
 * Digits after the point.
 */
decimals: number | null, 
/**
 * Answers (choices, yes/no).
 */
codes: Array<CodeDto>, 
/**
 * Longest text.
 */
max_length: number, 
/**
 * Needed for completeness.
 */
required: boolean, 
/**
 * Missing-data codes allowed (`ND`, `UNK`, `NA`).
 */
missing: Array<string>, 
/**
 * Only asked when.
 */
ask_when: ConditionDto | null, 
/**
 * Computed by the app.
 */
derived: boolean, };

export type SectionDto = { 
/**
 * Id.
 */
id: string, 
/**
 * Title.
 */
label: Txt, };

export type FormDto = { 
/**
 * Id.
 */
id: string, 
/**
 * Name.
 */
name: Txt, 
/**
 * When due, in words.
 */
when: Txt | null, 
/**
 * `once`, `by_day` or `by_event`.
 */
repeat: string, 
/**
 * Highest repeat number.
 */
max_repeats: number, 
/**
 * Written by the app, not typed.
 */
system: boolean, 
/**
 * Sections.
 */
sections: Array<SectionDto>, 
/**
 * Items.
 */
items: Array<ItemDto>, };

export type StudyDto = { 
/**
 * Study id.
 */
id: string, 
/**
 * Definition version.
 */
version: string, 
/**
 * Registry number.
 */
registry: string, 
/**
 * Title.
 */
title: Txt, 
/**
 * Forms in schedule order.
 */
forms: Array<FormDto>, 
/**
 * Missing-data codes with their labels.
 */
missing_codes: Array<CodeDto>, };

export type Welcome = { 
/**
 * A store exists at the configured path (else: first-run set-up).
 */
store_exists: boolean, 
/**
 * Where the store is.
 */
store_path: string, 
/**
 * The demo store is the one in use.
 */
demo: boolean, 
/**
 * A logged-in session, if any.
 */
session: SessionDto | null, };

export type SetupInput = { 
/**
 * Site code.
 */
site: string, 
/**
 * Administrator's login name.
 */
admin_user: string, 
/**
 * Administrator's full name.
 */
admin_name: string, 
/**
 * Administrator's password.
 */
password: string, };

export type SetupDone = { 
/**
 * Recovery key.
 */
recovery_key: string, };

export type SessionDto = { 
/**
 * Login name.
 */
user: string, 
/**
 * Full name.
 */
name: string, 
/**
 * Role.
 */
role: string, 
/**
 * `en` or `zh`, remembered per user.
 */
lang: string, 
/**
 * Minutes of inactivity before the screen locks.
 */
lock_minutes: number, 
/**
 * Site code.
 */
site: string, 
/**
 * May enter data.
 */
may_enter: boolean, };

export type StatusDto = "not_started" | "in_progress" | "complete" | "warnings" | "overdue";

export type SubjectRow = { 
/**
 * Subject number.
 */
subject: string, 
/**
 * Day 0, if known.
 */
day0: string | null, 
/**
 * The worst status of its forms.
 */
status: StatusDto, 
/**
 * Forms complete.
 */
complete: number, 
/**
 * Forms in progress.
 */
in_progress: number, 
/**
 * Forms overdue.
 */
overdue: number, 
/**
 * Forms with warnings.
 */
warnings: number, };

export type ScheduleRow = { 
/**
 * Instance key (`DLY#3`).
 */
key: string, 
/**
 * Form id.
 */
form: string, 
/**
 * Form name.
 */
name: Txt, 
/**
 * Repeat number.
 */
repeat: number | null, 
/**
 * Due date.
 */
due: string | null, 
/**
 * Status.
 */
status: StatusDto, 
/**
 * Written by the app, not typed.
 */
system: boolean, };

export type RandomizationView = { 
/**
 * Subject number given at randomization (`01-R0007`).
 */
subject_no: string, 
/**
 * Arm code: `ECMO_IABP` or `ECMO`.
 */
arm: string, 
/**
 * The arm's label.
 */
arm_label: Txt, 
/**
 * When randomized (RFC 3339 with offset).
 */
at: string, 
/**
 * Who randomized.
 */
by: string, 
/**
 * Envelope opened.
 */
envelope: string, 
/**
 * ECMO start (ECMO form, else the screening form), RFC 3339; none when not recorded.
 */
ecmo_start: string | null, 
/**
 * End of the 6-hour window from ECMO start (IABP due by then in the ECMO+IABP arm; no
 * mechanical unloading before then in the ECMO arm), RFC 3339.
 */
window_end: string | null, };

export type SubjectPage = { 
/**
 * Subject number.
 */
subject: string, 
/**
 * Day 0, if known.
 */
day0: string | null, 
/**
 * The schedule.
 */
schedule: Array<ScheduleRow>, 
/**
 * The randomization, once done.
 */
randomization: RandomizationView | null, };

export type Entry = { 
/**
 * Item id.
 */
item: string, 
/**
 * Text.
 */
text: string, };

export type FieldValue = { 
/**
 * Item id.
 */
item: string, 
/**
 * The value as text that the field shows and that parses back.
 */
text: string, 
/**
 * A confirmed warning kept with it.
 */
warning: Txt | null, };

export type FormPage = { 
/**
 * Subject number.
 */
subject: string, 
/**
 * Instance key.
 */
key: string, 
/**
 * Form id.
 */
form: string, 
/**
 * Saved values.
 */
values: Array<FieldValue>, 
/**
 * Values the app computes from them (BMI, VIS, pulse pressure), never typed.
 */
derived: Array<FieldValue>, 
/**
 * Status.
 */
status: StatusDto, 
/**
 * Required items still empty.
 */
missing: Array<string>, 
/**
 * Unsaved entries kept from an earlier visit.
 */
draft: Array<Entry> | null, };

export type FindingDto = { 
/**
 * Item shown beside.
 */
item: string, 
/**
 * Rule.
 */
rule: string, 
/**
 * `hard` or `soft`.
 */
severity: string, 
/**
 * Message.
 */
message: Txt, };

export type ReasonItem = { 
/**
 * Item id.
 */
item: string, 
/**
 * Its saved value.
 */
old: string, };

export type SaveReply = { "kind": "saved", 
/**
 * The form as it now is.
 */
page: FormPage, 
/**
 * Changes written.
 */
changes: number, } | { "kind": "refused", 
/**
 * Errors.
 */
errors: Array<FindingDto>, } | { "kind": "confirm", 
/**
 * Warnings.
 */
warnings: Array<FindingDto>, } | { "kind": "reason", 
/**
 * Items changed.
 */
items: Array<ReasonItem>, };

export type HistoryRow = { 
/**
 * Log sequence number.
 */
seq: number, 
/**
 * When (UTC).
 */
utc: string, 
/**
 * The device's offset then.
 */
offset: string, 
/**
 * Who.
 */
user: string, 
/**
 * Role.
 */
role: string, 
/**
 * Before.
 */
old: string | null, 
/**
 * After.
 */
new: string | null, 
/**
 * Why.
 */
reason: string | null, 
/**
 * A warning was confirmed.
 */
warning: boolean, };

export type Printout = { 
/**
 * Where it was saved.
 */
path: string, 
/**
 * Pages.
 */
pages: number, 
/**
 * It was handed to the desktop's PDF viewer.
 */
opened: boolean, };

export type BackupDone = { 
/**
 * The backup file.
 */
path: string, 
/**
 * Changes it holds.
 */
changes: number, 
/**
 * SHA-256 of its database part.
 */
sha256: string, };

export type BackupStatusDto = { 
/**
 * Show the reminder.
 */
remind: boolean, 
/**
 * After how many hours unprotected changes bring the reminder.
 */
reminder_hours: number, 
/**
 * The last backup taken on this laptop (UTC).
 */
last_backup_utc: string | null, 
/**
 * The oldest change neither on the server nor in a backup (UTC).
 */
unprotected_since_utc: string | null, };

export type ErrorCode = "no_store" | "bad_login" | "throttled" | "not_logged_in" | "not_allowed" | "damaged" | "disk_full" | "invalid" | "internal";

export type AppError = { 
/**
 * What kind.
 */
code: ErrorCode, 
/**
 * What happened and what to do.
 */
message: string, };
