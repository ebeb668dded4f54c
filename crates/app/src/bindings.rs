//! The TypeScript declarations of [`crate::dto`], generated into `ui/src/bindings.ts`.
//! `cargo test` fails when the file differs from what the Rust types give; run
//! `UPDATE_BINDINGS=1 cargo test -p ecrf-app bindings` to rewrite it.

use ts_rs::{Config, TS};

use crate::dto::*;

/// The whole `bindings.ts` text.
pub fn typescript() -> String {
    let cfg = Config::new().with_large_int("number");
    let decls = [
        Txt::decl(&cfg),
        CodeDto::decl(&cfg),
        RangeDto::decl(&cfg),
        ConditionDto::decl(&cfg),
        ItemKind::decl(&cfg),
        ItemDto::decl(&cfg),
        SectionDto::decl(&cfg),
        FormDto::decl(&cfg),
        StudyDto::decl(&cfg),
        Welcome::decl(&cfg),
        SetupInput::decl(&cfg),
        SetupDone::decl(&cfg),
        SessionDto::decl(&cfg),
        StatusDto::decl(&cfg),
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
        HistoryRow::decl(&cfg),
        Printout::decl(&cfg),
        ExportRequest::decl(&cfg),
        ExportDone::decl(&cfg),
        BackupDone::decl(&cfg),
        BackupStatusDto::decl(&cfg),
        ErrorCode::decl(&cfg),
        AppError::decl(&cfg),
        QueryDto::decl(&cfg),
        AuditFilterDto::decl(&cfg),
        AuditRow::decl(&cfg),
        AuditPage::decl(&cfg),
        AuditCsvDone::decl(&cfg),
        SyncStatusDto::decl(&cfg),
        ConflictDto::decl(&cfg),
        ConflictValueDto::decl(&cfg),
        SyncProgressDto::decl(&cfg),
        SyncDone::decl(&cfg),
        SignatureDto::decl(&cfg),
        OversightRights::decl(&cfg),
        FormOversight::decl(&cfg),
        SignInput::decl(&cfg),
    ];
    let mut out = String::from(
        "// Generated from crates/app/src/dto.rs by crates/app/src/bindings.rs. Do not edit.\n",
    );
    for d in decls {
        out.push_str("\nexport ");
        out.push_str(d.trim());
        out.push('\n');
    }
    out
}
