//! Types exchanged with the UI. The TypeScript declarations in `ui/src/bindings.ts` are
//! generated from these (see [`crate::bindings`]); a test fails when they are out of date.
//! Invariant: no `i64` crosses the boundary (JavaScript numbers), and every enum is tagged.

use ecrf_core::query::QueryState;
use ecrf_core::signature::SignatureMeaning;
use ecrf_core::study::Repeat;
use ecrf_core::{Lang, Role, Severity};
use ecrf_export::Format;
use ecrf_log::Change;
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use zeroize::Zeroize;

/// A text in both languages.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
pub struct Txt {
    /// English.
    pub en: String,
    /// Chinese.
    pub zh: String,
}

/// One answer of a choice item.
#[derive(Debug, Clone, Serialize, TS)]
pub struct CodeDto {
    /// Stored code.
    pub code: String,
    /// Label.
    pub label: Txt,
}

/// An inclusive range, as exact decimal text.
#[derive(Debug, Clone, Serialize, TS)]
pub struct RangeDto {
    /// Lowest.
    pub min: String,
    /// Highest.
    pub max: String,
}

/// The kinds of answer, as the UI draws them.
#[derive(Debug, Clone, Copy, Serialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// Whole number.
    Integer,
    /// Decimal number.
    Decimal,
    /// Date.
    Date,
    /// Date-time with offset.
    DateTime,
    /// One of a list.
    Choice,
    /// Several of a list.
    MultiChoice,
    /// Free text.
    Text,
}

/// One item of a form.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ItemDto {
    /// Id.
    pub id: String,
    /// Section id.
    pub section: String,
    /// Label.
    pub label: Txt,
    /// Help.
    pub help: Option<Txt>,
    /// Kind of answer.
    pub kind: ItemKind,
    /// Unit.
    pub unit: Option<String>,
    /// Possible range.
    pub hard: Option<RangeDto>,
    /// Usual range.
    pub soft: Option<RangeDto>,
    /// Digits after the point.
    pub decimals: Option<u32>,
    /// Answers (choices, yes/no).
    pub codes: Vec<CodeDto>,
    /// Longest text.
    pub max_length: u32,
    /// Needed for completeness.
    pub required: bool,
    /// Missing-data codes allowed (`ND`, `UNK`, `NA`).
    pub missing: Vec<String>,
    /// Asked only under a condition on another answer: hidden until
    /// [`crate::App::unasked_items`] says it is asked (the UI never evaluates the condition).
    pub conditional: bool,
    /// Computed by the app.
    pub derived: bool,
}

/// A titled group of items.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SectionDto {
    /// Id.
    pub id: String,
    /// Title.
    pub label: Txt,
}

/// One form of the study.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FormDto {
    /// Id.
    pub id: String,
    /// Name.
    pub name: Txt,
    /// When due, in words.
    pub when: Option<Txt>,
    /// How often it is filled in.
    pub repeat: Repeat,
    /// Highest repeat number.
    pub max_repeats: u32,
    /// Written by the app, not typed.
    pub system: bool,
    /// Sections.
    pub sections: Vec<SectionDto>,
    /// Items.
    pub items: Vec<ItemDto>,
}

/// The study definition as the UI draws it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct StudyDto {
    /// Study id.
    pub id: String,
    /// Definition version.
    pub version: String,
    /// Registry number.
    pub registry: String,
    /// Title.
    pub title: Txt,
    /// Forms in schedule order.
    pub forms: Vec<FormDto>,
    /// Missing-data codes with their labels.
    pub missing_codes: Vec<CodeDto>,
}

/// What the first screen needs to know.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Welcome {
    /// A store exists at the configured path (else: first-run set-up).
    pub store_exists: bool,
    /// Where the store is.
    pub store_path: String,
    /// The demo store is the one in use.
    pub demo: bool,
    /// A logged-in session, if any.
    pub session: Option<SessionDto>,
}

/// First-run set-up.
#[derive(Clone, Deserialize, TS)]
pub struct SetupInput {
    /// Site code.
    pub site: String,
    /// Administrator's login name.
    pub admin_user: String,
    /// Administrator's full name.
    pub admin_name: String,
    /// Administrator's password.
    pub password: String,
}

/// The result of set-up: the recovery key, shown once.
#[derive(Clone, Serialize, TS)]
pub struct SetupDone {
    /// Recovery key.
    pub recovery_key: String,
}

// Secrets that cross the UI boundary are wiped from memory once dropped and never printed.
impl Drop for SetupInput {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

impl std::fmt::Debug for SetupInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupInput")
            .field("site", &self.site)
            .field("admin_user", &self.admin_user)
            .field("admin_name", &self.admin_name)
            .field("password", &"(hidden)")
            .finish()
    }
}

impl Drop for SetupDone {
    fn drop(&mut self) {
        self.recovery_key.zeroize();
    }
}

impl std::fmt::Debug for SetupDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupDone")
            .field("recovery_key", &"(hidden)")
            .finish()
    }
}

/// The logged-in user.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SessionDto {
    /// Login name.
    pub user: String,
    /// Full name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The language, remembered per user.
    pub lang: Lang,
    /// Minutes of inactivity before the screen locks.
    pub lock_minutes: u32,
    /// Site code.
    pub site: String,
    /// May enter data (`Role::may`, like every right below: the UI never compares roles).
    pub may_enter: bool,
    /// May add users, change roles, deactivate users and reset passwords.
    pub may_manage_users: bool,
    /// May export data.
    pub may_export: bool,
}

/// Status words of a form instance.
#[derive(Debug, Clone, Copy, Serialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StatusDto {
    /// Nothing entered, not yet due.
    NotStarted,
    /// Nothing entered, due today.
    Due,
    /// Partly entered.
    InProgress,
    /// Complete.
    Complete,
    /// Has confirmed warnings.
    Warnings,
    /// Past due and not complete.
    Overdue,
    /// Past due and nothing entered.
    Missing,
}

/// One subject in the list.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SubjectRow {
    /// Subject number.
    pub subject: String,
    /// Day 0, if known.
    pub day0: Option<String>,
    /// The worst status of its forms.
    pub status: StatusDto,
    /// Forms complete.
    pub complete: u32,
    /// Forms in progress.
    pub in_progress: u32,
    /// Forms overdue.
    pub overdue: u32,
    /// Forms with warnings.
    pub warnings: u32,
}

/// One row of a subject's schedule.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ScheduleRow {
    /// Instance key (`DLY#3`).
    pub key: String,
    /// Form id.
    pub form: String,
    /// Form name.
    pub name: Txt,
    /// Repeat number.
    pub repeat: Option<u32>,
    /// Due date.
    pub due: Option<String>,
    /// Status.
    pub status: StatusDto,
    /// Written by the app, not typed.
    pub system: bool,
}

/// A subject's randomization, as shown after it (never before: sealed envelopes stay hidden).
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
pub struct RandomizationView {
    /// Subject number given at randomization (`01-R0007`).
    pub subject_no: String,
    /// Arm code: `ECMO_IABP` or `ECMO`.
    pub arm: String,
    /// The arm's label.
    pub arm_label: Txt,
    /// When randomized (RFC 3339 with offset).
    pub at: String,
    /// Who randomized.
    pub by: String,
    /// Envelope opened.
    pub envelope: String,
    /// ECMO start (ECMO form, else the screening form), RFC 3339; none when not recorded.
    pub ecmo_start: Option<String>,
    /// End of the 6-hour window from ECMO start (IABP due by then in the ECMO+IABP arm; no
    /// mechanical unloading before then in the ECMO arm), RFC 3339.
    pub window_end: Option<String>,
}

/// A subject's page.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SubjectPage {
    /// Subject number.
    pub subject: String,
    /// Day 0, if known.
    pub day0: Option<String>,
    /// The schedule.
    pub schedule: Vec<ScheduleRow>,
    /// The randomization, once done.
    pub randomization: Option<RandomizationView>,
    /// Derived outcomes and protocol flags.
    pub outcome: OutcomeView,
    /// Daily values over days, for the trend charts.
    pub trends: Trends,
}

/// A protocol flag and its reason.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
pub struct FlagView {
    /// Stable code (`IABP_LATE`, `CROSSOVER`, `DAILY_LOG_MISSING`…).
    pub code: String,
    /// Form instance it concerns.
    pub form: String,
    /// Item at fault, if one.
    pub item: Option<String>,
    /// Why.
    pub message: Txt,
}

/// A subject's derived outcomes (`core::outcome`), ready to show; `None` while not known.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
pub struct OutcomeView {
    /// IABP insertion − ECMO start, minutes.
    pub iabp_delay_min: Option<i32>,
    /// The same in hours (two decimals).
    pub iabp_delay_hours: Option<String>,
    /// ECMO+IABP arm: IABP later than 6 h or never.
    pub iabp_deviation: Option<bool>,
    /// ECMO arm: mechanical unloading within 6 h.
    pub crossover: Option<bool>,
    /// Days on ECMO (one decimal).
    pub days_on_ecmo: Option<String>,
    /// Days on IABP (one decimal).
    pub days_on_iabp: Option<String>,
    /// ICU length of stay, days.
    pub icu_los_days: Option<i32>,
    /// Hospital length of stay, days.
    pub hospital_los_days: Option<i32>,
    /// Successful ECMO weaning: `yes`, `no`, `unknown`; none without decannulation.
    pub successful_weaning: Option<String>,
    /// Earliest recorded date of death.
    pub death_date: Option<String>,
    /// Vital status at day 30: `alive`, `dead`, `unknown`.
    pub day30_status: String,
    /// Death within 30 days of randomization: `yes`, `no`, `unknown`.
    pub primary_endpoint: String,
    /// Days alive to day 30.
    pub days_alive_to_day30: Option<i32>,
    /// Protocol flags with reasons.
    pub flags: Vec<FlagView>,
}

/// One study day's values for the trend charts (worst of the day, as logged).
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
pub struct TrendPoint {
    /// Study day.
    pub day: u32,
    /// Lactate, mmol/L.
    pub lactate: Option<f64>,
    /// Mean arterial pressure, mmHg.
    pub map: Option<f64>,
    /// Pulse pressure, mmHg (derived).
    pub pulse_pressure: Option<f64>,
    /// ECMO flow, L/min.
    pub flow: Option<f64>,
    /// Vasoactive-inotropic score (derived).
    pub vis: Option<f64>,
}

/// A moment marked on the charts.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
pub struct TrendMark {
    /// Study day with the time of day as a fraction (day 1 at 18:00 = 1.75).
    pub day: f64,
    /// `iabp_in` or `iabp_out`.
    pub kind: String,
}

/// The daily values and the IABP insertions and removals.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
pub struct Trends {
    /// One point per daily log, by day.
    pub points: Vec<TrendPoint>,
    /// IABP insertion and removal times.
    pub marks: Vec<TrendMark>,
}

/// A value typed (or to be typed) into an item, as text (`@ND` for missing codes).
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
pub struct Entry {
    /// Item id.
    pub item: String,
    /// Text.
    pub text: String,
}

/// A saved value.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FieldValue {
    /// Item id.
    pub item: String,
    /// The value as text that the field shows and that parses back.
    pub text: String,
    /// A confirmed warning kept with it.
    pub warning: Option<Txt>,
}

/// A form instance as the form page shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FormPage {
    /// Subject number.
    pub subject: String,
    /// Instance key.
    pub key: String,
    /// Form id.
    pub form: String,
    /// Saved values.
    pub values: Vec<FieldValue>,
    /// Values the app computes from them (BMI, VIS, pulse pressure), never typed.
    pub derived: Vec<FieldValue>,
    /// Status.
    pub status: StatusDto,
    /// Required items still empty.
    pub missing: Vec<String>,
    /// Unsaved entries kept from an earlier visit.
    pub draft: Option<Vec<Entry>>,
    /// When `draft` was prefilled from an earlier daily log: its key (`DLY#2`), to confirm
    /// or change.
    pub prefilled_from: Option<String>,
}

/// A broken edit check.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FindingDto {
    /// Item shown beside.
    pub item: String,
    /// Rule.
    pub rule: String,
    /// Refused (hard) or needs confirming (soft).
    pub severity: Severity,
    /// Message.
    pub message: Txt,
}

/// A saved value about to change.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ReasonItem {
    /// Item id.
    pub item: String,
    /// Its saved value.
    pub old: String,
}

/// What a save did or needs.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SaveReply {
    /// Saved.
    Saved {
        /// The form as it now is.
        page: FormPage,
        /// Changes written.
        changes: u32,
    },
    /// Refused: hard errors, shown beside their fields. Nothing written.
    Refused {
        /// Errors.
        errors: Vec<FindingDto>,
    },
    /// Needs the user to confirm these warnings. Nothing written yet.
    Confirm {
        /// Warnings.
        warnings: Vec<FindingDto>,
    },
    /// Needs a reason for changing saved values. Nothing written yet.
    Reason {
        /// Items changed.
        items: Vec<ReasonItem>,
    },
}

/// One change of an item's history.
#[derive(Debug, Clone, Serialize, TS)]
pub struct HistoryRow {
    /// Log sequence number.
    pub seq: u32,
    /// When (UTC).
    pub utc: String,
    /// The device's offset then.
    pub offset: String,
    /// Who.
    pub user: String,
    /// Role.
    pub role: String,
    /// Before.
    pub old: Option<String>,
    /// After.
    pub new: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// A warning was confirmed.
    pub warning: bool,
}

/// A PDF written to disk.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Printout {
    /// Where it was saved.
    pub path: String,
    /// Pages.
    pub pages: u32,
    /// It was handed to the desktop's PDF viewer.
    pub opened: bool,
}

/// A backup written from the app.
#[derive(Debug, Clone, Serialize, TS)]
pub struct BackupDone {
    /// The backup file.
    pub path: String,
    /// Changes it holds.
    #[ts(type = "number")]
    pub changes: i64,
    /// SHA-256 of its database part.
    pub sha256: String,
}

/// Whether to remind the user to back up.
#[derive(Debug, Clone, Serialize, TS)]
pub struct BackupStatusDto {
    /// Show the reminder.
    pub remind: bool,
    /// After how many hours unprotected changes bring the reminder.
    pub reminder_hours: u32,
    /// The last backup taken on this laptop (UTC).
    pub last_backup_utc: Option<String>,
    /// The oldest change neither on the server nor in a backup (UTC).
    pub unprotected_since_utc: Option<String>,
}

/// Error codes the UI can act on without reading messages.
#[derive(Debug, Clone, Copy, Serialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No store yet.
    NoStore,
    /// Wrong user name or password.
    BadLogin,
    /// Too many failed attempts: wait.
    Throttled,
    /// Not logged in (locked).
    NotLoggedIn,
    /// The role may not.
    NotAllowed,
    /// The store file is damaged.
    Damaged,
    /// The disk is full: nothing was saved; free space and save again.
    DiskFull,
    /// Bad input, explained.
    Invalid,
    /// The server cannot be reached now: nothing is lost, try again later.
    Offline,
    /// Anything else.
    Internal,
}

/// An error for the UI: a code and a sentence.
#[derive(Debug, Clone, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// What kind.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
}

/// What the data manager asks to export (the Export page).
#[derive(Debug, Clone, Deserialize, TS)]
pub struct ExportRequest {
    /// The format (`csv` comes with the dictionary and the R script).
    pub format: Format,
    /// Form ids; empty = every form.
    pub forms: Vec<String>,
    /// Only this site; none = every site in the store.
    pub site: Option<String>,
    /// Also the audit trail.
    pub include_audit: bool,
    /// Folder to write into (created if needed).
    pub folder: String,
}

/// An export written (and recorded in the audit trail).
#[derive(Debug, Clone, Serialize, TS)]
pub struct ExportDone {
    /// The folder.
    pub folder: String,
    /// Files written.
    pub files: Vec<String>,
    /// Subjects exported.
    pub subjects: u32,
    /// Time taken, milliseconds.
    pub millis: u32,
}

/// A data query as the UI shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct QueryDto {
    /// Id.
    pub id: String,
    /// Subject.
    pub subject: String,
    /// Form instance (`DLY#3`).
    pub form: String,
    /// Item id.
    pub item: String,
    /// Where it stands.
    pub state: QueryState,
    /// The question.
    pub text: String,
    /// Raised by (user name).
    pub raised_by: String,
    /// When raised (UTC).
    pub raised_utc: String,
}

/// A signature as the UI shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SignatureDto {
    /// `DLY#3` or `casebook`.
    pub scope: String,
    /// Printed name.
    pub name: String,
    /// User name.
    pub signer: String,
    /// UTC time.
    pub utc: String,
    /// Device offset at signing (`+08:00`).
    pub offset: String,
    /// The stated meaning, in both languages.
    pub meaning: Txt,
    /// False once a signed value changed: needs re-signing.
    pub valid: bool,
}

/// What the logged-in user may do about a form's oversight.
#[derive(Debug, Clone, Serialize, TS)]
pub struct OversightRights {
    /// Raise, close and reopen queries.
    pub query: bool,
    /// Answer queries.
    pub answer: bool,
    /// Mark source data verified.
    pub verify: bool,
    /// Sign.
    pub sign: bool,
    /// Lock and unlock.
    pub lock: bool,
}

/// Queries, SDV marks, signatures and the lock of one form instance.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FormOversight {
    /// Queries on the form, open first.
    pub queries: Vec<QueryDto>,
    /// Items verified against the source and unchanged since.
    pub verified: Vec<String>,
    /// Signatures covering the form (its own and the casebook's).
    pub signatures: Vec<SignatureDto>,
    /// The lock that covers the form, in words, if any.
    pub locked: Option<String>,
    /// The next signature asks for the user id too (first in this session).
    pub sign_needs_user: bool,
    /// What this user may do.
    pub rights: OversightRights,
}

/// An investigator's signature request.
#[derive(Clone, Deserialize, TS)]
pub struct SignInput {
    /// Subject.
    pub subject: String,
    /// Form instance; none signs the whole casebook.
    pub key: Option<String>,
    /// What the signature means.
    pub meaning: SignatureMeaning,
    /// User id (the first signature of a session).
    pub user: Option<String>,
    /// Password.
    pub password: String,
}

impl Drop for SignInput {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

impl std::fmt::Debug for SignInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInput")
            .field("subject", &self.subject)
            .field("key", &self.key)
            .field("meaning", &self.meaning)
            .field("user", &self.user)
            .field("password", &"(hidden)")
            .finish()
    }
}

/// Which changes the Audit trail page shows; each field narrows it (empty = any).
#[derive(Debug, Clone, Default, Deserialize, TS)]
pub struct AuditFilterDto {
    /// One subject.
    pub subject: Option<String>,
    /// One form instance (`DLY#3`) or every instance of a form (`DLY`).
    pub form: Option<String>,
    /// One item.
    pub item: Option<String>,
    /// One user.
    pub user: Option<String>,
}

/// One change of the audit trail, as the Audit trail page shows it: the change as recorded,
/// and its values as a reader sees them (a query's text, not its JSON body).
#[derive(Debug, Clone, Serialize, TS)]
pub struct AuditRow {
    /// Log sequence number (the change's place in this store's log).
    pub seq: u32,
    /// The change, every field as hashed.
    pub change: Change,
    /// The value before, as shown.
    pub old_shown: Option<String>,
    /// The value after, as shown.
    pub new_shown: Option<String>,
}

/// A page of the audit trail: the newest rows that match, and how many match in all.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AuditPage {
    /// Newest first, at most [`AUDIT_PAGE_ROWS`].
    pub rows: Vec<AuditRow>,
    /// Changes that match the filter.
    pub total: u32,
}

/// Rows the Audit trail page shows at once (the CSV holds them all).
pub const AUDIT_PAGE_ROWS: usize = 500;

/// The audit trail written as CSV.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AuditCsvDone {
    /// Where it was saved.
    pub path: String,
    /// Changes written.
    pub rows: u32,
}

/// Where this laptop stands with the server (the Sync page and the header badge).
#[derive(Debug, Clone, Serialize, TS)]
pub struct SyncStatusDto {
    /// Enrolled with a server.
    pub enrolled: bool,
    /// The server's address.
    pub server: Option<String>,
    /// When the last sync finished without error (UTC), if ever.
    pub last_success: Option<String>,
    /// This laptop's changes the server does not hold yet.
    pub waiting: u32,
    /// Items two devices changed without seeing each other's value.
    pub conflicts: Vec<ConflictDto>,
    /// The session may enrol the laptop (administrator).
    pub may_enrol: bool,
    /// The session may resolve conflicts (whoever may change data: the value chosen is a
    /// correction with a reason, like any other).
    pub may_resolve: bool,
}

/// Every event the shell sends the UI: its name and its payload's TypeScript type
/// (`ui/src/commands.ts` gets one typed listener per entry).
pub const EVENTS: [(&str, TsName); 1] = [(SYNC_PROGRESS, || {
    SyncProgressDto::name(&ts_rs::Config::new())
})];

/// A payload's TypeScript type name.
pub type TsName = fn() -> String;

/// A sync's page moved: the payload is a [`SyncProgressDto`].
pub const SYNC_PROGRESS: &str = "sync-progress";

/// An item in conflict, with every value kept.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConflictDto {
    /// Subject.
    pub subject: String,
    /// Form instance.
    pub form: String,
    /// Item.
    pub item: String,
    /// The values, each with who wrote it where and when.
    pub values: Vec<ConflictValueDto>,
}

/// One value of an item in conflict.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConflictValueDto {
    /// The value as shown and as typed back to choose it (none: cleared).
    pub value: Option<String>,
    /// Who wrote it.
    pub user: String,
    /// On which device.
    pub device: String,
    /// When (UTC).
    pub utc: String,
}

/// Where a running sync is (sent to the window as `sync-progress` events).
#[derive(Debug, Clone, Copy, Serialize, TS)]
pub struct SyncProgressDto {
    /// Own changes the server holds now.
    pub sent: u32,
    /// Own changes to send in all.
    pub to_send: u32,
    /// Changes received so far.
    pub received: u32,
}

/// What a sync did.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SyncDone {
    /// Own changes the server stored.
    pub sent: u32,
    /// Other devices' changes applied here.
    pub received: u32,
    /// Items in conflict after the sync.
    pub conflicts: u32,
    /// What the server flagged (this laptop's clock off, an event dated before what it changes,
    /// a change held back under a lock), in the server's words.
    pub flags: Vec<String>,
    /// Changes held back under a lock, for the data manager.
    pub held: u32,
    /// When it finished (UTC).
    pub finished: String,
}
