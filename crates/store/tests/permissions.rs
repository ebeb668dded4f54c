//! The permission matrix on the laptop: every role × every action of `ecrf_core::role`, tried
//! through the store's real operations on a real SQLCipher file.
//!
//! `PERMISSIONS` in `crates/core/src/role.rs` is the one table that decides who may do what; the
//! store enforces it at each operation (`Store::require`). This test holds every enforcement
//! point to the table: for each role it opens the store as that role's user and attempts the
//! operation(s) behind each [`Action`], and the expected outcome is read from the table
//! ([`Role::may`]), never written here. So the test fails when an operation lets a role through
//! that the table refuses, refuses a role the table allows, or refuses for another reason than
//! permission (an allowed attempt must succeed: its preconditions are built beforehand by users
//! allowed to build them). A refusal must be exactly the permission refusal
//! ([`StoreError::NotAllowed`] naming the user, their role and an action the table refuses
//! them) and must write nothing to the log.
//!
//! Two actions have no store operation: [`Action::ViewByArm`] (the web view's closed report,
//! tested there) and [`Action::ManageDevices`] (enrolling this laptop with
//! the server, its site CA) is checked by the desktop's use cases (`ecrf_app::App::enrol` and
//! `App::set_site_ca`, `crates/app/src/sync.rs`) and by the server, which refuses a pushed
//! `store.create` from any role but an administrator; the server side of the matrix
//! (`crates/cli/tests/permissions_server.rs`) covers it. Every other pair is checked here:
//! 15 actions × 6 roles = 90 pairs. On failure the test prints the whole matrix and every
//! mismatching pair.

use std::fmt::Write as _;
use std::path::Path;

use ecrf_core::lock::LockScope;
use ecrf_core::query::QueryStep;
use ecrf_core::sample::{consent_by_spouse, eligible_screening};
use ecrf_core::signature::SignatureMeaning;
use ecrf_core::{Action, FormKey, Role};
use ecrf_log::body::Exported;
use ecrf_randomize::{ListSpec, Stratum, generate, to_csv};
use ecrf_store::{AuditFilter, SaveOptions, Store, StoreError};
use ecrf_testkit::{
    ADMIN, DATA_MANAGER, INVESTIGATOR, MONITOR, NURSE, STATISTICIAN, Site, User, ecmo_started_ago,
    eligible_subject, open_as, study,
};

/// The site of the store.
const SITE: &str = "01";
/// The seed of the site's allocation list (the set-up lease and the leases tried).
const SEED: [u8; 32] = [19; 32];
/// Envelopes leased at set-up (two blocks of 4): enough for every role to randomize once.
const LEASED: usize = 8;
/// A password strong enough for the store's rule, for the users the attempts make or reset.
const NEW_PASSWORD: &str = "quiet-harbour-lilac-42";

/// The fixed test user holding each role.
fn user_of(role: Role) -> User {
    match role {
        Role::Nurse => NURSE,
        Role::Investigator => INVESTIGATOR,
        Role::Monitor => MONITOR,
        Role::DataManager => DATA_MANAGER,
        Role::Statistician => STATISTICIAN,
        Role::Admin => ADMIN,
    }
}

fn key(form: &str) -> FormKey {
    FormKey::parse(&study(), form).unwrap_or_else(|e| panic!("form key {form}: {e}"))
}

fn confirmed(reason: Option<&str>) -> SaveOptions {
    SaveOptions {
        reason: reason.map(str::to_string),
        confirm_warnings: true,
    }
}

/// What one role's attempts work on, prepared beforehand (by users allowed to prepare it), so
/// an allowed attempt can only fail if the store refuses it.
struct Fixture {
    /// Screened eligible, consented, ECMO started an hour ago (randomizable now), DLY#1 MAP
    /// saved, EOS complete (signable), DLY#4 locked.
    subject: String,
    /// Created, nothing entered: the screening attempts go here.
    blank: String,
    /// Its screening number (`SCR.SCRNO`).
    scrno: String,
    /// An open query (on DLY#1 MAP of `subject`) to answer.
    to_answer: String,
    /// Another open query, to close and reopen.
    to_close: String,
    /// A user of the store for the user-management attempts.
    target: String,
    /// A lease file of one block of envelopes not yet in the store.
    lease: String,
}

/// The store at `path`: the five fixed users, a lease of [`LEASED`] envelopes, and one
/// [`Fixture`] per role (in [`Role::ALL`] order).
fn prepare(path: &Path) -> Vec<Fixture> {
    let mut admin = Site::new(SITE)
        .with(NURSE)
        .with(INVESTIGATOR)
        .with(MONITOR)
        .with(DATA_MANAGER)
        .with(STATISTICIAN)
        .with_lease(LEASED, SEED)
        .create(path);
    let targets: Vec<String> = Role::ALL
        .iter()
        .map(|r| format!("target-{}", r.as_str().replace('_', "-")))
        .collect();
    for t in &targets {
        admin
            .add_user(t, "Target", Role::Nurse, NEW_PASSWORD)
            .unwrap_or_else(|e| panic!("add {t}: {e}"));
    }
    drop(admin);

    let mut nurse = open_as(path, &NURSE);
    let mut made = Vec::new();
    for (i, _) in Role::ALL.iter().enumerate() {
        let scrno = format!("{SITE}-{:03}", i + 1);
        let subject = eligible_subject(&mut nurse, &scrno);
        ecmo_started_ago(&mut nurse, &subject, 60);
        for (form, entries) in [
            ("DLY#1", vec![("MAP", "72")]),
            (
                "EOS",
                vec![("EOS_STATUS", "COMPLETED"), ("EOS_DATE", "2026-04-01")],
            ),
        ] {
            nurse
                .save(&subject, &key(form), &entries, &confirmed(None))
                .unwrap_or_else(|e| panic!("set-up {subject} {form}: {e}"));
        }
        let blank = nurse.new_subject().expect("a blank subject");
        made.push((subject, blank, format!("{SITE}-{:03}", 100 + i)));
    }
    drop(nurse);

    let mut monitor = open_as(path, &MONITOR);
    let mut queries = Vec::new();
    for (subject, _, _) in &made {
        let mut raise = |text: &str| {
            monitor
                .raise_query(subject, &key("DLY#1"), "MAP", text)
                .unwrap_or_else(|e| panic!("set-up query on {subject}: {e}"))
        };
        queries.push((raise("MAP 72 on the chart?"), raise("Which monitor?")));
    }
    drop(monitor);

    let mut dm = open_as(path, &DATA_MANAGER);
    for (subject, _, _) in &made {
        dm.lock(
            LockScope::Form {
                subject: subject.clone(),
                form: "DLY#4".into(),
            },
            "cleaned",
        )
        .unwrap_or_else(|e| panic!("set-up lock on {subject}: {e}"));
    }
    drop(dm);

    // One whole block of 4 per role, after the blocks leased at set-up.
    let spec = ListSpec {
        stratum: Stratum::site(SITE).expect("a stratum"),
        count: LEASED + 4 * Role::ALL.len(),
        block_sizes: vec![4],
    };
    let list = generate(&spec, &SEED).expect("an allocation list");
    made.into_iter()
        .zip(queries)
        .zip(targets)
        .enumerate()
        .map(
            |(i, (((subject, blank, scrno), (to_answer, to_close)), target))| {
                let from = LEASED + 4 * i;
                Fixture {
                    subject,
                    blank,
                    scrno,
                    to_answer,
                    to_close,
                    target,
                    lease: to_csv(&list[from..from + 4]),
                }
            },
        )
        .collect()
}

/// One attempt: what was tried, and what the store answered.
type Attempt = (&'static str, Result<(), StoreError>);

fn done<T>(r: Result<T, StoreError>) -> Result<(), StoreError> {
    r.map(|_| ())
}

/// The store operation(s) behind `action`, tried as `user` on `fx`; `None` when the action has
/// no store operation. Exhaustive: a new action does not compile until it is placed here.
fn attempt(store: &mut Store, user: &User, action: Action, fx: &Fixture) -> Option<Vec<Attempt>> {
    let s = fx.subject.as_str();
    Some(match action {
        Action::Read => vec![
            ("audit trail", done(store.audit_log(s))),
            ("form values", done(store.form_values(s, &key("DLY#1")))),
            ("subject values", done(store.subject_values(s))),
            ("queries", done(store.queries(None))),
            (
                "audit review",
                done(store.audit_review(&AuditFilter::default())),
            ),
            ("signatures", done(store.signatures(s))),
            ("users", done(store.users())),
        ],
        Action::Screen => vec![
            (
                "eligibility checklist",
                done(store.save(
                    &fx.blank,
                    &key("SCR"),
                    &eligible_screening(&fx.scrno),
                    &confirmed(None),
                )),
            ),
            (
                "consent",
                done(store.save(
                    &fx.blank,
                    &key("CON"),
                    &consent_by_spouse(),
                    &confirmed(None),
                )),
            ),
        ],
        Action::EnterData => vec![
            ("new subject", done(store.new_subject())),
            (
                "value into an empty item",
                done(store.save(s, &key("DLY#2"), &[("HR", "84")], &confirmed(None))),
            ),
        ],
        Action::ChangeData => vec![(
            "change a saved value with a reason",
            done(store.save(
                s,
                &key("DLY#1"),
                &[("MAP", "62")],
                &confirmed(Some("transcription error")),
            )),
        )],
        Action::Randomize => vec![
            ("check randomizable", store.check_randomizable(s)),
            ("randomize", done(store.randomize(s))),
        ],
        Action::Sign => vec![(
            "sign EOS",
            done(store.sign(
                s,
                Some(&key("EOS")),
                SignatureMeaning::Approval,
                Some(user.username),
                user.password,
            )),
        )],
        Action::RaiseQuery => vec![(
            "raise a query",
            done(store.raise_query(s, &key("DLY#1"), "MAP", "Source shows 62 mmHg")),
        )],
        Action::AnswerQuery => vec![(
            "answer a query",
            store.query_step(
                &fx.to_answer,
                QueryStep::Answer,
                "Checked against the chart",
            ),
        )],
        Action::CloseQuery => vec![
            (
                "close a query",
                store.query_step(&fx.to_close, QueryStep::Close, "Agreed"),
            ),
            (
                "reopen it",
                store.query_step(&fx.to_close, QueryStep::Reopen, "Still unclear"),
            ),
        ],
        Action::VerifySource => vec![("SDV mark", done(store.verify_source(s, &key("EOS"), &[])))],
        Action::Lock => vec![(
            "lock a form",
            store.lock(
                LockScope::Form {
                    subject: s.into(),
                    form: "DLY#3".into(),
                },
                "cleaned",
            ),
        )],
        Action::Unlock => vec![(
            "unlock a form",
            store.unlock(
                LockScope::Form {
                    subject: s.into(),
                    form: "DLY#4".into(),
                },
                "late lab result",
            ),
        )],
        Action::Export => vec![
            ("export view", done(store.export_view(true))),
            ("check before a server export", store.require_export()),
            (
                "record an export",
                done(store.record_export(Exported {
                    formats: vec!["csv".into()],
                    forms: vec!["all".into()],
                    site: Some(SITE.into()),
                    source: Some("store".into()),
                    include_audit: true,
                    out: "/tmp/export".into(),
                    files: 1,
                    subjects: 1,
                })),
            ),
        ],
        Action::ManageUsers => {
            let new_user = format!("new-{}", fx.target);
            vec![
                (
                    "add a user",
                    store.add_user(&new_user, "New", Role::Nurse, NEW_PASSWORD),
                ),
                (
                    "reset a password",
                    store.reset_password(&fx.target, "amber-teapot-canyon-93"),
                ),
                (
                    "change a role",
                    store.change_role(&fx.target, Role::Investigator),
                ),
                ("deactivate a user", store.deactivate_user(&fx.target)),
            ]
        }
        // Not a store operation: enrolment and the site CA are refused to other roles by
        // `ecrf_app::App::enrol` / `App::set_site_ca` (crates/app/src/sync.rs) and a pushed
        // `store.create` by the server (`ecrf_server::rules::permissions`); the server test
        // covers it.
        Action::ManageDevices | Action::ViewByArm => return None,
        Action::LoadLease => vec![("load a lease", done(store.load_lease(&fx.lease)))],
    })
}

/// Why `got` is not what the table says `role` may do with `action`, if it is not.
fn disagreement(
    user: &User,
    action: Action,
    got: &Result<(), StoreError>,
    wrote: bool,
) -> Option<String> {
    let role = user.role;
    match (role.may(action), got) {
        (true, Ok(())) => None,
        (true, Err(e)) => Some(format!("allowed by the table, but refused: {e}")),
        (false, Ok(())) => Some("refused by the table, but it succeeded".into()),
        (
            false,
            Err(StoreError::NotAllowed {
                user: u,
                role: r,
                action: named,
            }),
        ) => {
            let named_refused = Action::ALL
                .iter()
                .find(|a| a.to_string() == *named)
                .is_some_and(|a| !role.may(*a));
            if u != user.username || r != role.as_str() {
                Some(format!(
                    "refused naming {u} ({r}), not {} ({role})",
                    user.username
                ))
            } else if !named_refused {
                Some(format!(
                    "refused for \"{named}\", which is not an action the table refuses {role}"
                ))
            } else if wrote {
                Some("refused, but the log grew".into())
            } else {
                None
            }
        }
        (false, Err(e)) => Some(format!("refused by the table, but refused otherwise: {e}")),
    }
}

#[test]
fn every_role_may_do_on_the_laptop_exactly_what_the_permission_table_says() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("site.ecrf");
    let fixtures = prepare(&path);

    // (action, role) → "yes" / "no" / "n/a", and every disagreement.
    let mut cells = std::collections::HashMap::new();
    let mut mismatches = Vec::new();
    let mut pairs = 0;
    for (role, fx) in Role::ALL.into_iter().zip(&fixtures) {
        let user = user_of(role);
        let mut store = open_as(&path, &user);
        for action in Action::ALL {
            let before = (store.head().0, store.head().1.to_string());
            let Some(attempts) = attempt(&mut store, &user, action, fx) else {
                cells.insert((action, role), "n/a".to_string());
                continue;
            };
            let after = (store.head().0, store.head().1.to_string());
            pairs += 1;
            let mut cell = if role.may(action) { "yes" } else { "no" }.to_string();
            for (what, got) in &attempts {
                if let Some(why) = disagreement(&user, action, got, before != after) {
                    cell.push_str(" !!");
                    mismatches.push(format!("{role} × {action} ({what}): {why}"));
                }
            }
            cells.insert((action, role), cell);
        }
    }

    let mut table = format!("{:<26}", "action \\ role");
    for role in Role::ALL {
        let _ = write!(table, "{:<14}", role.as_str());
    }
    for action in Action::ALL {
        let _ = write!(table, "\n{:<26}", action.to_string());
        for role in Role::ALL {
            let _ = write!(table, "{:<14}", cells[&(action, role)]);
        }
    }
    println!("{table}");
    assert!(
        mismatches.is_empty(),
        "the store disagrees with the permission table (!! below):\n{table}\n\n{}",
        mismatches.join("\n")
    );
    // Every pair but ManageDevices' and ViewByArm's (no store operation; see the module docs).
    assert_eq!(pairs, (Action::ALL.len() - 2) * Role::ALL.len());
}
