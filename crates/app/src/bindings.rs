//! The TypeScript declarations of [`crate::dto`], generated into `ui/src/bindings.ts`.
//! `cargo test` fails when the file differs from what the Rust types give; run
//! `UPDATE_BINDINGS=1 cargo test -p ecrf-app bindings` to rewrite it.

use ts_rs::{Config, TS};

use crate::dto::*;
use ecrf_core::query::{QueryState, QueryStep};
use ecrf_core::schedule::FormStatus;
use ecrf_core::signature::SignatureMeaning;
use ecrf_core::study::Repeat;
use ecrf_core::{Lang, Role, Severity};
use ecrf_export::Format;
use ecrf_log::record::{Query, User};
use ecrf_log::{Change, ChangeKind};

/// The whole `bindings.ts` text.
pub fn typescript() -> String {
    let cfg = Config::new().with_large_int("number");
    let decls = [
        // The trial's own types the UI shows, from core, log and export.
        Role::decl(&cfg),
        Lang::decl(&cfg),
        Repeat::decl(&cfg),
        Severity::decl(&cfg),
        Format::decl(&cfg),
        QueryState::decl(&cfg),
        QueryStep::decl(&cfg),
        SignatureMeaning::decl(&cfg),
        ChangeKind::decl(&cfg),
        Change::decl(&cfg),
        User::decl(&cfg),
        Query::decl(&cfg),
        FormStatus::decl(&cfg),
        // The app's own.
        Txt::decl(&cfg),
        CodeDto::decl(&cfg),
        RangeDto::decl(&cfg),
        ItemKind::decl(&cfg),
        ItemDto::decl(&cfg),
        SectionDto::decl(&cfg),
        FormDto::decl(&cfg),
        StudyDto::decl(&cfg),
        FormVersionDto::decl(&cfg),
        Welcome::decl(&cfg),
        SetupInput::decl(&cfg),
        SetupDone::decl(&cfg),
        SessionDto::decl(&cfg),
        SubjectRow::decl(&cfg),
        ScheduleRow::decl(&cfg),
        RandomizationView::decl(&cfg),
        FlagView::decl(&cfg),
        OutcomeView::decl(&cfg),
        TrendPoint::decl(&cfg),
        TrendMark::decl(&cfg),
        Trends::decl(&cfg),
        SubjectPage::decl(&cfg),
        Entry::decl(&cfg),
        FieldValue::decl(&cfg),
        FormPage::decl(&cfg),
        FindingDto::decl(&cfg),
        ReasonItem::decl(&cfg),
        SaveReply::decl(&cfg),
        Printout::decl(&cfg),
        ExportRequest::decl(&cfg),
        ExportDone::decl(&cfg),
        BackupDone::decl(&cfg),
        BackupStatusDto::decl(&cfg),
        ErrorCode::decl(&cfg),
        AppError::decl(&cfg),
        AuditFilterDto::decl(&cfg),
        AuditRow::decl(&cfg),
        AuditPage::decl(&cfg),
        AuditCsvDone::decl(&cfg),
        SyncStatusDto::decl(&cfg),
        ConflictDto::decl(&cfg),
        ConflictValueDto::decl(&cfg),
        SyncProgressDto::decl(&cfg),
        SyncDone::decl(&cfg),
        EnvelopesDto::decl(&cfg),
        EnvelopeCountDto::decl(&cfg),
        SignatureDto::decl(&cfg),
        OversightRights::decl(&cfg),
        FormOversight::decl(&cfg),
        SignInput::decl(&cfg),
        ScreeningStatus::decl(&cfg),
        ReasonDto::decl(&cfg),
        ScreenedPatient::decl(&cfg),
        CriterionCount::decl(&cfg),
        ArmCount::decl(&cfg),
        ConsortDto::decl(&cfg),
        ScreeningLog::decl(&cfg),
        LabCandidateDto::decl(&cfg),
        LabProblemDto::decl(&cfg),
        LabPreview::decl(&cfg),
        LabApplied::decl(&cfg),
        SubjectMrn::decl(&cfg),
    ];
    let mut out = String::from(
        "// Generated from crates/app/src/dto.rs by crates/app/src/bindings.rs. Do not edit.\n",
    );
    for d in decls {
        out.push_str("\nexport ");
        out.push_str(d.trim());
        out.push('\n');
    }
    // The choices the UI offers, in Rust's order, so a select never lists a value Rust refuses.
    out.push_str(&values("ROLES", &Role::ALL));
    out.push_str(&values("SIGNATURE_MEANINGS", &SignatureMeaning::ALL));
    out.push_str(&values("EXPORT_FORMATS", &Format::ALL));
    out
}

/// `export const NAME: readonly T[] = [...];` with each value as serde writes it.
fn values<T: serde::Serialize + TS>(name: &str, all: &[T]) -> String {
    let items: Vec<String> = all
        .iter()
        .map(|v| serde_json::to_string(v).unwrap_or_default())
        .collect();
    format!(
        "\nexport const {name}: readonly {}[] = [{}];\n",
        T::name(&Config::new()),
        items.join(", ")
    )
}
