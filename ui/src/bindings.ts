// Generated from crates/app/src/dto.rs by crates/app/src/bindings.rs. Do not edit.

export type Role = "nurse" | "investigator" | "monitor" | "data_manager" | "statistician" | "admin";

export type Lang = "en" | "zh";

export type Repeat = "once" | "by_day" | "by_event";

export type Severity = "soft" | "hard";

export type Format = "csv" | "stata" | "spss" | "sas" | "odm";

export type QueryState = "open" | "answered" | "closed";

export type QueryStep = "raise" | "answer" | "close" | "reopen";

export type SignatureMeaning = "approval" | "review";

export type ChangeKind = "store.create" | "user.add" | "subject.create" | "item.set" | "lease.load" | "subject.randomize" | "data.export" | "login.failed" | "query.raise" | "query.answer" | "query.close" | "query.reopen" | "sdv.mark" | "signature.sign" | "lock.set" | "lock.release" | "user.role" | "user.deactivate" | "user.password_reset" | "user.password_change" | "lock.held" | "study.publish" | "site.activate" | "form.version";

export type Change = { 
/**
 * Globally unique id (UUID v7).
 */
change_id: string, 
/**
 * Device that made the change.
 */
device: string, 
/**
 * That device's own counter, from 1.
 */
device_seq: number, 
/**
 * What the change does.
 */
kind: ChangeKind, 
/**
 * Subject number.
 */
subject: string | null, 
/**
 * Form instance, like `DLY#3`.
 */
form: string | null, 
/**
 * Item id (or user name for the user kinds).
 */
item: string | null, 
/**
 * Value before.
 */
old_value: string | null, 
/**
 * Value after, or the kind's body.
 */
new_value: string | null, 
/**
 * Who.
 */
user: string, 
/**
 * In which role.
 */
role: string, 
/**
 * When, UTC, RFC 3339 with milliseconds.
 */
utc: string, 
/**
 * The device's UTC offset at that moment, like `+08:00`.
 */
local_offset: string, 
/**
 * Why (required when a saved value changes).
 */
reason: string | null, 
/**
 * Soft warnings confirmed with this change (JSON list of findings).
 */
warning: string | null, 
/**
 * Hash of the same device's previous change ([`GENESIS`] for its first).
 */
prev_hash: string, 
/**
 * For `item.set`: JSON list of the change ids of the item's values this change replaces
 * (the values its writer saw; two or more when it resolves a conflict). `None` in changes
 * written before sync existed: they replace whatever the item held.
 */
base: string | null, 
/**
 * Where the value came from when it was not typed: JSON of a [`crate::body::Provenance`]
 * (a laboratory file's SHA-256, format and the result's own id). Hashed when present.
 */
source?: string | null, 
/**
 * Hash of this change.
 */
hash: string, 
/**
 * The author's Ed25519 signature over the hash ([`crate::author`]), 128 hex characters.
 * Not hashed: it signs the hash. `None` in changes written before changes were signed.
 */
signature?: string | null, };

export type User = { 
/**
 * Login name.
 */
username: string, 
/**
 * Full name.
 */
name: string, 
/**
 * Role.
 */
role: Role, 
/**
 * False once deactivated (users are never deleted).
 */
active: boolean, };

export type Query = { 
/**
 * Id.
 */
id: string, 
/**
 * Subject.
 */
subject: string, 
/**
 * Form instance.
 */
form: string, 
/**
 * Item.
 */
item: string, 
/**
 * State.
 */
state: QueryState, 
/**
 * The question.
 */
text: string, 
/**
 * Raised by.
 */
raised_by: string, 
/**
 * When raised (UTC).
 */
raised_utc: string, };

export type FormStatus = "not_started" | "due" | "in_progress" | "complete" | "warnings" | "overdue" | "missing";

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
 * Asked only under a condition on another answer: hidden until
 * [`crate::App::unasked_items`] says it is asked (the UI never evaluates the condition).
 */
conditional: boolean, 
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
 * How often it is filled in.
 */
repeat: Repeat, 
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
missing_codes: Array<CodeDto>, 
/**
 * Why nothing new may be entered, when the version in force at the site cannot be used
 * by this app (too old): shown on every page.
 */
blocked: string | null, };

export type FormVersionDto = { 
/**
 * The definition version.
 */
version: string, 
/**
 * The form as that version defines it.
 */
form: FormDto, };

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
role: Role, 
/**
 * The language, remembered per user.
 */
lang: Lang, 
/**
 * Minutes of inactivity before the screen locks.
 */
lock_minutes: number, 
/**
 * Site code.
 */
site: string, 
/**
 * May enter data (`Role::may`, like every right below: the UI never compares roles).
 */
may_enter: boolean, 
/**
 * May add users, change roles, deactivate users and reset passwords.
 */
may_manage_users: boolean, 
/**
 * May export data.
 */
may_export: boolean, 
/**
 * The folder the user chose for printouts and audit CSVs (none yet: printing asks).
 */
print_folder: string | null, };

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
status: FormStatus, 
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
status: FormStatus, 
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

export type FlagView = { 
/**
 * Stable code (`IABP_LATE`, `CROSSOVER`, `DAILY_LOG_MISSING`…).
 */
code: string, 
/**
 * Form instance it concerns.
 */
form: string, 
/**
 * Item at fault, if one.
 */
item: string | null, 
/**
 * Why.
 */
message: Txt, };

export type OutcomeView = { 
/**
 * IABP insertion − ECMO start, minutes.
 */
iabp_delay_min: number | null, 
/**
 * The same in hours (two decimals).
 */
iabp_delay_hours: string | null, 
/**
 * ECMO+IABP arm: IABP later than 6 h or never.
 */
iabp_deviation: boolean | null, 
/**
 * ECMO arm: mechanical unloading within 6 h.
 */
crossover: boolean | null, 
/**
 * Days on ECMO (one decimal).
 */
days_on_ecmo: string | null, 
/**
 * Days on IABP (one decimal).
 */
days_on_iabp: string | null, 
/**
 * ICU length of stay, days.
 */
icu_los_days: number | null, 
/**
 * Hospital length of stay, days.
 */
hospital_los_days: number | null, 
/**
 * Successful ECMO weaning: `yes`, `no`, `unknown`; none without decannulation.
 */
successful_weaning: string | null, 
/**
 * Earliest recorded date of death.
 */
death_date: string | null, 
/**
 * Vital status at day 30: `alive`, `dead`, `unknown`.
 */
day30_status: string, 
/**
 * Death within 30 days of randomization: `yes`, `no`, `unknown`.
 */
primary_endpoint: string, 
/**
 * Days alive to day 30.
 */
days_alive_to_day30: number | null, 
/**
 * Protocol flags with reasons.
 */
flags: Array<FlagView>, };

export type TrendPoint = { 
/**
 * Study day.
 */
day: number, 
/**
 * Lactate, mmol/L.
 */
lactate: number | null, 
/**
 * Mean arterial pressure, mmHg.
 */
map: number | null, 
/**
 * Pulse pressure, mmHg (derived).
 */
pulse_pressure: number | null, 
/**
 * ECMO flow, L/min.
 */
flow: number | null, 
/**
 * Vasoactive-inotropic score (derived).
 */
vis: number | null, };

export type TrendMark = { 
/**
 * Study day with the time of day as a fraction (day 1 at 18:00 = 1.75).
 */
day: number, 
/**
 * `iabp_in` or `iabp_out`.
 */
kind: string, };

export type Trends = { 
/**
 * One point per daily log, by day.
 */
points: Array<TrendPoint>, 
/**
 * IABP insertion and removal times.
 */
marks: Array<TrendMark>, };

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
randomization: RandomizationView | null, 
/**
 * Derived outcomes and protocol flags.
 */
outcome: OutcomeView, 
/**
 * Daily values over days, for the trend charts.
 */
trends: Trends, };

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
status: FormStatus, 
/**
 * Required items still empty.
 */
missing: Array<string>, 
/**
 * Unsaved entries kept from an earlier visit.
 */
draft: Array<Entry> | null, 
/**
 * When `draft` was prefilled from an earlier daily log: its key (`DLY#2`), to confirm
 * or change.
 */
prefilled_from: string | null, };

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
 * Refused (hard) or needs confirming (soft).
 */
severity: Severity, 
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

export type ExportRequest = { 
/**
 * The format (`csv` comes with the dictionary and the R script).
 */
format: Format, 
/**
 * Form ids; empty = every form.
 */
forms: Array<string>, 
/**
 * Only this site; none = every site in the store.
 */
site: string | null, 
/**
 * Also the audit trail.
 */
include_audit: boolean, 
/**
 * Folder to write into (created if needed).
 */
folder: string, };

export type ExportDone = { 
/**
 * The folder.
 */
folder: string, 
/**
 * Files written.
 */
files: Array<string>, 
/**
 * Subjects exported.
 */
subjects: number, 
/**
 * Time taken, milliseconds.
 */
millis: number, };

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

export type ErrorCode = "no_store" | "bad_login" | "throttled" | "not_logged_in" | "not_allowed" | "damaged" | "disk_full" | "invalid" | "offline" | "internal";

export type AppError = { 
/**
 * What kind.
 */
code: ErrorCode, 
/**
 * What happened and what to do.
 */
message: string, };

export type AuditFilterDto = { 
/**
 * One subject.
 */
subject: string | null, 
/**
 * One form instance (`DLY#3`) or every instance of a form (`DLY`).
 */
form: string | null, 
/**
 * One item.
 */
item: string | null, 
/**
 * One user.
 */
user: string | null, };

export type AuditRow = { 
/**
 * Log sequence number (the change's place in this store's log).
 */
seq: number, 
/**
 * The change, every field as hashed.
 */
change: Change, 
/**
 * The value before, as shown.
 */
old_shown: string | null, 
/**
 * The value after, as shown.
 */
new_shown: string | null, 
/**
 * Where the value came from when it was not typed (a laboratory file's result), in words.
 */
source_shown: string | null, };

export type AuditPage = { 
/**
 * Newest first, at most [`AUDIT_PAGE_ROWS`].
 */
rows: Array<AuditRow>, 
/**
 * Changes that match the filter.
 */
total: number, };

export type AuditCsvDone = { 
/**
 * Where it was saved.
 */
path: string, 
/**
 * Changes written.
 */
rows: number, };

export type SyncStatusDto = { 
/**
 * Enrolled with a server.
 */
enrolled: boolean, 
/**
 * The server's address.
 */
server: string | null, 
/**
 * This laptop's device id: the administrator makes its enrolment code for it.
 */
device: string, 
/**
 * The site CA certificate file the sync trusts (none: public CAs).
 */
ca_file: string | null, 
/**
 * When the last sync finished without error (UTC), if ever.
 */
last_success: string | null, 
/**
 * This laptop's changes the server does not hold yet.
 */
waiting: number, 
/**
 * Items two devices changed without seeing each other's value.
 */
conflicts: Array<ConflictDto>, 
/**
 * The session may enrol the laptop (administrator).
 */
may_enrol: boolean, 
/**
 * The session may resolve conflicts (whoever may change data: the value chosen is a
 * correction with a reason, like any other).
 */
may_resolve: boolean, 
/**
 * A newer release of the app the server offers (its own release is newer than this
 * app's): ask IT to install it.
 */
update: string | null, };

export type ConflictDto = { 
/**
 * Subject.
 */
subject: string, 
/**
 * Form instance.
 */
form: string, 
/**
 * Item.
 */
item: string, 
/**
 * The values, each with who wrote it where and when.
 */
values: Array<ConflictValueDto>, };

export type ConflictValueDto = { 
/**
 * The value as shown and as typed back to choose it (none: cleared).
 */
value: string | null, 
/**
 * Who wrote it.
 */
user: string, 
/**
 * On which device.
 */
device: string, 
/**
 * When (UTC).
 */
utc: string, };

export type SyncProgressDto = { 
/**
 * Own changes the server holds now.
 */
sent: number, 
/**
 * Own changes to send in all.
 */
to_send: number, 
/**
 * Changes received so far.
 */
received: number, };

export type SyncDone = { 
/**
 * Own changes the server stored.
 */
sent: number, 
/**
 * Other devices' changes applied here.
 */
received: number, 
/**
 * Items in conflict after the sync.
 */
conflicts: number, 
/**
 * What the server flagged (this laptop's clock off, an event dated before what it changes,
 * a change held back under a lock), in the server's words.
 */
flags: Array<string>, 
/**
 * Changes held back under a lock, for the data manager.
 */
held: number, 
/**
 * When it finished (UTC).
 */
finished: string, };

export type EnvelopesDto = { 
/**
 * The session may load a lease from the server (administrator).
 */
may_load: boolean, 
/**
 * Enrolled with a server (a lease comes from there).
 */
enrolled: boolean, 
/**
 * Per stratum: sealed and opened envelopes.
 */
strata: Array<EnvelopeCountDto>, };

export type EnvelopeCountDto = { 
/**
 * Stratum key (the site code today).
 */
stratum: string, 
/**
 * Still sealed.
 */
sealed: number, 
/**
 * Opened.
 */
opened: number, };

export type SignatureDto = { 
/**
 * `DLY#3` or `casebook`.
 */
scope: string, 
/**
 * Printed name.
 */
name: string, 
/**
 * User name.
 */
signer: string, 
/**
 * UTC time.
 */
utc: string, 
/**
 * Device offset at signing (`+08:00`).
 */
offset: string, 
/**
 * The stated meaning, in both languages.
 */
meaning: Txt, 
/**
 * False once a signed value changed: needs re-signing.
 */
valid: boolean, };

export type OversightRights = { 
/**
 * Raise, close and reopen queries.
 */
query: boolean, 
/**
 * Answer queries.
 */
answer: boolean, 
/**
 * Mark source data verified.
 */
verify: boolean, 
/**
 * Sign.
 */
sign: boolean, 
/**
 * Lock and unlock.
 */
lock: boolean, };

export type FormOversight = { 
/**
 * Queries on the form, open first.
 */
queries: Array<Query>, 
/**
 * Items verified against the source and unchanged since.
 */
verified: Array<string>, 
/**
 * Signatures covering the form (its own and the casebook's).
 */
signatures: Array<SignatureDto>, 
/**
 * The lock that covers the form, in words, if any.
 */
locked: string | null, 
/**
 * The next signature asks for the user id too (first in this session).
 */
sign_needs_user: boolean, 
/**
 * What this user may do.
 */
rights: OversightRights, };

export type SignInput = { 
/**
 * Subject.
 */
subject: string, 
/**
 * Form instance; none signs the whole casebook.
 */
key: string | null, 
/**
 * What the signature means.
 */
meaning: SignatureMeaning, 
/**
 * User id (the first signature of a session).
 */
user: string | null, 
/**
 * Password.
 */
password: string, };

export type ScreeningStatus = "randomized" | "pending" | "no_consent" | "not_eligible";

export type ReasonDto = { 
/**
 * The criterion: `I1`..`I4`, `E1`..`E10`.
 */
criterion: string, 
/**
 * The criterion's label (its SCR item).
 */
label: Txt, 
/**
 * What is wrong (core's words, in English).
 */
text: string, };

export type ScreenedPatient = { 
/**
 * Screening number.
 */
subject: string, 
/**
 * Screening date-time as stored.
 */
screened_at: string | null, 
/**
 * Age in years.
 */
age: string | null, 
/**
 * Sex.
 */
sex: Txt | null, 
/**
 * The screening checklist shows every inclusion and no exclusion criterion.
 */
eligible: boolean, 
/**
 * Why not (empty when eligible).
 */
reasons: Array<ReasonDto>, 
/**
 * Where the patient stands.
 */
status: ScreeningStatus, 
/**
 * Why consent is not counted (core's words, in English), when eligible without consent.
 */
consent_note: string | null, 
/**
 * The screen-failure reason recorded on SCR.
 */
screen_failure: Txt | null, 
/**
 * The arm, once randomized.
 */
arm: Txt | null, };

export type CriterionCount = { 
/**
 * `I1`..`E10`.
 */
criterion: string, 
/**
 * Its label.
 */
label: Txt, 
/**
 * Patients (one patient may count under several criteria).
 */
count: number, };

export type ArmCount = { 
/**
 * Arm code.
 */
arm: string, 
/**
 * Its label.
 */
label: Txt, 
/**
 * Patients.
 */
count: number, };

export type ConsortDto = { 
/**
 * Site code.
 */
site: string, 
/**
 * Patients screened.
 */
screened: number, 
/**
 * Not eligible.
 */
not_eligible: number, 
/**
 * Not eligible, by criterion.
 */
by_criterion: Array<CriterionCount>, 
/**
 * Eligible (screened − not eligible).
 */
eligible: number, 
/**
 * Eligible, consent not obtained.
 */
consent_not_obtained: number, 
/**
 * Eligible and consented (randomized or waiting).
 */
consented: number, 
/**
 * Eligible and consented, not randomized yet.
 */
pending: number, 
/**
 * Randomized.
 */
randomized: number, 
/**
 * Randomized, by arm.
 */
by_arm: Array<ArmCount>, };

export type ScreeningLog = { 
/**
 * Every screened patient, in screening-number order.
 */
patients: Array<ScreenedPatient>, 
/**
 * CONSORT counts per site.
 */
sites: Array<ConsortDto>, };

export type LabCandidateDto = { 
/**
 * The id a decision names.
 */
id: string, 
/**
 * Subject.
 */
subject: string, 
/**
 * Form instance (`BAS`, `DLY#3`).
 */
form: string, 
/**
 * Item id.
 */
item: string, 
/**
 * The item's label.
 */
label: Txt, 
/**
 * The value that would be saved, in the item's unit.
 */
value: string, 
/**
 * The item's unit.
 */
unit: string, 
/**
 * The source's value and unit as written.
 */
source: string, 
/**
 * Specimen time as the source states it.
 */
taken: string, 
/**
 * The result's id in the file.
 */
result: string, 
/**
 * The value entered now.
 */
entered: string | null, 
/**
 * Other results that day (not the worst).
 */
others: number, 
/**
 * `new`, `differs`, `same`, `imported`, `rejected`.
 */
status: string, };

export type LabProblemDto = { 
/**
 * Where (entry, message, row, subject).
 */
place: string, 
/**
 * Why.
 */
message: string, };

export type LabPreview = { 
/**
 * The file.
 */
path: string, 
/**
 * `fhir`, `hl7`, `csv`, `xlsx`.
 */
format: string, 
/**
 * SHA-256 of the file (the decisions are applied only to this very file).
 */
sha256: string, 
/**
 * Results read.
 */
results: number, 
/**
 * Candidates by subject and day.
 */
candidates: Array<LabCandidateDto>, 
/**
 * What cannot be used.
 */
problems: Array<LabProblemDto>, };

export type LabApplied = { 
/**
 * Values saved.
 */
saved: number, 
/**
 * Results rejected (remembered).
 */
rejected: number, 
/**
 * Left undecided.
 */
undecided: number, };

export type SubjectMrn = { 
/**
 * Subject.
 */
subject: string, 
/**
 * Hospital record number.
 */
mrn: string, };

export const ROLES: readonly Role[] = ["nurse", "investigator", "monitor", "data_manager", "statistician", "admin"];

export const SIGNATURE_MEANINGS: readonly SignatureMeaning[] = ["approval", "review"];

export const EXPORT_FORMATS: readonly Format[] = ["csv", "stata", "spss", "sas", "odm"];
