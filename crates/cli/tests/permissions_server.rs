//! The permission matrix on the server: every role × every kind of change a laptop can push,
//! against the real `ecrf server`, a real PostgreSQL and a real enrolled SQLCipher store.
//!
//! The server decides each pushed change by [`ecrf_log::permission`] (which action of the
//! permission table in `crates/core/src/role.rs` the change takes) and [`Role::may`]. A tampered
//! or buggy laptop can push anything, so the server is the last enforcement point: this test
//! pushes, for each role and each kind of change (`ChangeKind::ALL`, plus the variants that take
//! another action: a value changed rather than entered, a query raised by a save, a value typed
//! into the screening form), a change stated with that role, signed by the user holding that
//! role on the laptop (the server's user registry learnt them at enrolment). The expected
//! outcome comes from the table, never from this file:
//! - not allowed (`Needs(action)` with `!role.may(action)`, or `ServerOnly`): the server answers
//!   403 naming the change and the rule, and stores nothing (rows of `changes` counted);
//! - allowed (`Anyone`, or `Needs(action)` with `role.may(action)`): the change is stored (every
//!   body is valid enough for the server to keep it), and the next change follows it; except
//!   user management (`ManageUsers`: `user.add`, `user.role`, `user.deactivate`,
//!   `user.password_reset`), which the administrator does on the server once a laptop is
//!   enrolled: from a laptop it is refused for every role, naming that rule.
//!
//! Actions without a change of their own: `Screen` is checked through a value typed into the
//! screening form (the server sees an `item.set`, so the table's `Screen` row must agree with
//! what it enforces for it); `Read` is a pull, which the server gives any enrolled device with
//! no user named, so it is checked that the table grants `Read` to every role and that a pull
//! works. Every (role, action) pair of the table is covered: 16 actions × 5 roles = 80 pairs,
//! over 24 pushes per role. Then changes whose stated role is not the one their author holds
//! in the registry (a nurse stating investigator, a monitor stating data manager) or signed by
//! another user's key are refused too. On failure the test prints the whole matrix with every
//! mismatching pair.

mod server;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use ecrf_core::signature::SignatureMeaning;
use ecrf_core::{Action, Role, Value};
use ecrf_log::body::{self, Body};
use ecrf_log::{AuthorKey, Change, ChangeKind, Permission, permission};
use ecrf_store::SaveOptions;
use ecrf_sync::SyncError;
use ecrf_testkit::{ADMIN, DATA_MANAGER, INVESTIGATOR, MONITOR, NURSE, STATISTICIAN, Site, User};
use server::{Device, Server, fresh_database, psql, study};

const SITE: &str = "01";

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

/// What is pushed: a change kind, or one of the variants of a kind that take another action.
#[derive(Debug, Clone, Copy)]
enum Case {
    /// A change of this kind (an `item.set` into an empty item, a query raised by a person).
    Kind(ChangeKind),
    /// An `item.set` over a saved value, with a reason (`ChangeData`).
    ItemChanged,
    /// A value typed into the screening form (`Screen`).
    Screening,
    /// A query raised by a save, a warning confirmed without a comment (part of `EnterData`).
    AutoQuery,
}

impl Case {
    fn all() -> Vec<Case> {
        let mut out = Vec::new();
        for k in ChangeKind::ALL {
            out.push(Case::Kind(k));
            match k {
                ChangeKind::ItemSet => out.extend([Case::ItemChanged, Case::Screening]),
                ChangeKind::QueryRaised => out.push(Case::AutoQuery),
                _ => {}
            }
        }
        out
    }

    fn label(self) -> String {
        match self {
            Case::Kind(ChangeKind::ItemSet) => "item.set (empty item)".into(),
            Case::Kind(k) => k.as_str().into(),
            Case::ItemChanged => "item.set (saved value)".into(),
            Case::Screening => "item.set (SCR screening)".into(),
            Case::AutoQuery => "query.raise (auto, by a save)".into(),
        }
    }
}

/// What the changes of one role's pushes name: the subject, the item change they replace,
/// and names of their own (users, query, lock scope, envelope) so no two roles' changes clash.
struct Ctx {
    subject: String,
    /// The change that saved DLY#1 HR = 80 on the laptop.
    hr_change: String,
    author: User,
    index: usize,
    query: String,
}

impl Ctx {
    fn target(&self) -> String {
        format!("extra-{}", self.index)
    }
}

/// Fills in `c` (subject, form, item, old value, reason, base) for `case` and returns its body.
/// Exhaustive over the kinds: a new kind does not compile until it is pushed here.
fn shape(case: Case, ctx: &Ctx, c: &mut Change) -> Body {
    let mut on = |form: &str, item: Option<&str>| {
        c.subject = Some(ctx.subject.clone());
        c.form = Some(form.into());
        c.item = item.map(str::to_string);
    };
    let step = |text: &str, auto| body::QueryStep {
        query: ctx.query.clone(),
        text: text.into(),
        auto,
    };
    let lock = body::Lock {
        scope: "form".into(),
        site: None,
    };
    let lock_form = format!("DLY#{}", 20 + ctx.index);
    let kind = match case {
        Case::ItemChanged => {
            on("DLY#1", Some("HR"));
            c.old_value = Some(Value::Int(80).to_json());
            c.reason = Some("re-measured".into());
            c.base = Some(format!("[\"{}\"]", ctx.hr_change));
            return Body::ItemSet {
                old: Some(Value::Int(80)),
                new: Some(Value::Int(82)),
            };
        }
        Case::Screening => {
            on("SCR", Some("AGE"));
            c.base = Some("[]".into());
            return Body::ItemSet {
                old: None,
                new: Some(Value::Int(61)),
            };
        }
        Case::AutoQuery => {
            on("DLY#1", Some("HR"));
            return Body::QueryRaised(step("Confirmed without a comment: HR is high", true));
        }
        Case::Kind(k) => k,
    };
    match kind {
        ChangeKind::StoreCreated => Body::StoreCreated(body::StoreCreated {
            site: SITE.into(),
            store_id: uuid::Uuid::new_v4().to_string(),
        }),
        ChangeKind::UserAdded => {
            c.item = Some(ctx.target());
            Body::UserAdded(body::UserAdded {
                name: "Extra".into(),
                role: Role::Nurse,
                public_key: None,
            })
        }
        ChangeKind::SubjectCreated => {
            c.subject = Some(format!("{SITE}-X{}-0001", ctx.index));
            Body::SubjectCreated { site: SITE.into() }
        }
        ChangeKind::ItemSet => {
            on("DLY#2", Some("HR"));
            c.base = Some("[]".into());
            Body::ItemSet {
                old: None,
                new: Some(Value::Int(84)),
            }
        }
        ChangeKind::LeaseLoaded => {
            c.item = Some(uuid::Uuid::now_v7().to_string());
            let seq = 900 + ctx.index as u32;
            Body::LeaseLoaded(vec![body::LeasedEnvelope {
                envelope: format!("{SITE}-E{seq:04}"),
                stratum: SITE.into(),
                seq,
                block: 300 + ctx.index as u32,
                block_size: 1,
                commitment: Some("ab".repeat(32)),
                arm: None,
            }])
        }
        ChangeKind::Randomized => {
            c.subject = Some(ctx.subject.clone());
            let envelope = format!("{SITE}-E{:04}", 800 + ctx.index);
            c.item = Some(envelope.clone());
            Body::Randomized(body::Opened {
                envelope,
                arm: "ECMO".into(),
                subject_no: format!("{SITE}-R{:04}", 800 + ctx.index),
                stratum: SITE.into(),
                server: false,
                nonce: None,
            })
        }
        ChangeKind::DataExported => Body::DataExported(body::Exported {
            formats: vec!["csv".into()],
            forms: vec!["all".into()],
            site: Some(SITE.into()),
            source: Some("store".into()),
            include_audit: false,
            out: "/tmp/export".into(),
            files: 1,
            subjects: 1,
        }),
        ChangeKind::LoginFailed => Body::LoginFailed(body::LoginFailed {
            attempted_utc: None,
            failed: "wrong password".into(),
        }),
        ChangeKind::QueryRaised => {
            on("DLY#1", Some("HR"));
            Body::QueryRaised(step("HR 80 on the chart?", false))
        }
        ChangeKind::QueryAnswered => {
            on("DLY#1", Some("HR"));
            Body::QueryAnswered(step("Checked: 80", false))
        }
        ChangeKind::QueryClosed => {
            on("DLY#1", Some("HR"));
            Body::QueryClosed(step("Agreed", false))
        }
        ChangeKind::QueryReopened => {
            on("DLY#1", Some("HR"));
            Body::QueryReopened(step("Still unclear", false))
        }
        ChangeKind::SdvMarked => {
            on("DLY#1", Some("HR"));
            Body::SdvMarked {
                value: Some(Value::Int(80)),
            }
        }
        ChangeKind::Signed => {
            on("DLY#1", None);
            Body::Signed(body::Signed {
                meaning: SignatureMeaning::Approval,
                name: ctx.author.name.into(),
                values_hash: "cd".repeat(32),
            })
        }
        ChangeKind::Locked => {
            on(&lock_form, None);
            c.reason = Some("cleaned".into());
            Body::Locked(lock)
        }
        ChangeKind::Unlocked => {
            on(&lock_form, None);
            c.reason = Some("late lab result".into());
            Body::Unlocked(lock)
        }
        ChangeKind::UserRole => {
            c.item = Some(ctx.target());
            Body::UserRole {
                role: Role::Monitor,
            }
        }
        ChangeKind::UserDeactivated => {
            c.item = Some(ctx.target());
            Body::UserDeactivated
        }
        ChangeKind::PasswordReset => {
            c.item = Some(ctx.target());
            Body::PasswordReset(body::KeyBody { public_key: None })
        }
        ChangeKind::PasswordChanged => {
            c.item = Some(ctx.author.username.into());
            Body::PasswordChanged(body::KeyBody { public_key: None })
        }
        ChangeKind::LockHeld => {
            on("DLY#1", Some("HR"));
            Body::LockHeld(body::Held {
                change: ctx.hr_change.clone(),
                lock: format!("DLY#1 of {}", ctx.subject),
            })
        }
        ChangeKind::StudyPublished => {
            let files = vec![("study/study.toml".to_string(), "id = \"X\"".to_string())];
            Body::StudyPublished(body::StudyPublished {
                version: "9.9.9".into(),
                sha256: body::StudyPublished::files_sha256(&files),
                files,
            })
        }
        ChangeKind::SiteActivated => Body::SiteActivated(body::SiteActivated {
            site: SITE.into(),
            version: "9.9.9".into(),
            from: "2026-05-01".into(),
        }),
        ChangeKind::FormVersioned => {
            on("DLY#2", None);
            Body::FormVersioned {
                version: "1.1.0".into(),
            }
        }
    }
}

/// The device's next change after `last`: `case` by `author` stating `role`, hashed, chained
/// and signed with `key`, as a store would write it (or a tampered app could).
fn next_change(
    last: &Change,
    author: &User,
    role: Role,
    key: &AuthorKey,
    case: Case,
    ctx: &Ctx,
) -> Change {
    let mut c = Change {
        seq: 0,
        change_id: uuid::Uuid::now_v7().to_string(),
        device: last.device.clone(),
        device_seq: last.device_seq + 1,
        kind: ChangeKind::ItemSet,
        subject: None,
        form: None,
        item: None,
        old_value: None,
        new_value: None,
        user: author.username.into(),
        role: role.as_str().into(),
        utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        local_offset: "+08:00".into(),
        reason: None,
        warning: None,
        prev_hash: last.hash.clone(),
        base: None,
        source: None,
        hash: String::new(),
        signature: None,
    };
    let body = shape(case, ctx, &mut c);
    c.kind = body.kind();
    c.new_value = body.new_value();
    c.hash = c.compute_hash();
    key.sign(&mut c);
    c
}

/// Rows of `changes` on the server: all of them, and those with this change id.
fn counts(db: &str, change_id: &str) -> (u64, u64) {
    let out = psql(
        db,
        &format!(
            "SELECT count(*) || ' ' || count(*) FILTER (WHERE change_id = '{change_id}') \
             FROM changes"
        ),
    );
    let mut n = out.split(' ').map(|n| n.parse::<u64>().unwrap_or(u64::MAX));
    (n.next().unwrap_or(u64::MAX), n.next().unwrap_or(u64::MAX))
}

/// A laptop of site 01 with all five users (registered by the server when it enrols), one
/// subject with DLY#1 HR = 80, enrolled and synced.
fn enrolled_laptop(dir: &std::path::Path, server: &Server) -> (Device, String) {
    let path = dir.join("ward.ecrf");
    let mut store = Site::new(SITE)
        .with(NURSE)
        .with(INVESTIGATOR)
        .with(MONITOR)
        .with(DATA_MANAGER)
        .with(STATISTICIAN)
        .create_as(&path, &NURSE);
    ecrf_sync::enrol(
        &store,
        &server.url(),
        &server.enrol_code(SITE, store.device_id()),
        None,
    )
    .expect("enrol the laptop");
    let subject = store.new_subject().expect("a subject");
    let dly1 = ecrf_core::FormKey::parse(&study(), "DLY#1").expect("DLY#1");
    store
        .save(&subject, &dly1, &[("HR", "80")], &SaveOptions::default())
        .expect("HR saved");
    let client = ecrf_sync::client::client_of(&store).expect("a client");
    ecrf_sync::sync(&mut store, &client, &mut |_| {}).expect("the first sync");
    (Device { store, path }, subject)
}

#[test]
fn the_server_takes_from_each_role_exactly_the_changes_the_permission_table_allows() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let server = Server::start(&fresh_database(), dir.path());
    server.add_site(SITE);
    let (device, subject) = enrolled_laptop(dir.path(), &server);
    let client = device.client();
    let db = server.database_url.clone();
    let hr_change = device.last_own_item_set().change_id;
    let keys: HashMap<Role, AuthorKey> = Role::ALL
        .into_iter()
        .map(|r| {
            let u = user_of(r);
            (r, device.author_key(u.username, u.password))
        })
        .collect();
    let mut last = device.last_own();
    let (mut stored, _) = counts(&db, "");

    // Read: a pull, served to any enrolled device without naming a user, so the table must
    // grant it to every role (the server could not refuse one).
    let mut covered: HashSet<(Role, Action)> = HashSet::new();
    let mut mismatches = Vec::new();
    client.pull(SITE, 0, 10).expect("a pull");
    for role in Role::ALL {
        if role.may(Action::Read) {
            covered.insert((role, Action::Read));
        } else {
            mismatches.push(format!(
                "{role} × read data: the table refuses it, but the server serves pulls to any \
                 enrolled device, whoever is logged in"
            ));
        }
    }

    let cases = Case::all();
    let mut cells: HashMap<(String, Role), String> = HashMap::new();
    let mut rules: HashMap<String, String> = HashMap::new();
    for (index, role) in Role::ALL.into_iter().enumerate() {
        let author = user_of(role);
        let ctx = Ctx {
            subject: subject.clone(),
            hr_change: hr_change.clone(),
            author,
            index,
            query: uuid::Uuid::now_v7().to_string(),
        };
        for &case in &cases {
            let change = next_change(&last, &author, role, &keys[&role], case, &ctx);
            let rule = permission(&change);
            let (allowed, refusal, rule_name) = match rule {
                Permission::Anyone => (true, String::new(), "anyone".to_string()),
                Permission::Needs(action) => {
                    covered.insert((role, action));
                    (
                        role.may(action),
                        format!("the role {role} may not {action}"),
                        action.to_string(),
                    )
                }
                Permission::ServerOnly => (
                    false,
                    "only the server makes this kind of change".to_string(),
                    "server only".to_string(),
                ),
            };
            // Users are managed on the server (`ecrf server user …`) once a laptop is enrolled:
            // even the administrator the table allows is refused from a laptop, by that rule.
            let laptop_user_change = matches!(
                change.kind,
                ChangeKind::UserAdded
                    | ChangeKind::UserRole
                    | ChangeKind::UserDeactivated
                    | ChangeKind::PasswordReset
            );
            let (allowed, refusal) = if laptop_user_change && allowed {
                (
                    false,
                    "users are created and changed on the server only".to_string(),
                )
            } else {
                (allowed, refusal)
            };
            let mut cell = if allowed { "yes" } else { "no" }.to_string();
            let mut wrong = |why: String| {
                cell.push_str(" !!");
                mismatches.push(format!("{role} × {} ({rule_name}): {why}", case.label()));
            };
            // Screening is an item.set to the server: the table's Screen row must agree.
            if matches!(case, Case::Screening) {
                covered.insert((role, Action::Screen));
                if role.may(Action::Screen) != allowed {
                    wrong(format!(
                        "the table says {role} may{} screen, but the server decides a \
                         screening value as {rule_name}",
                        if role.may(Action::Screen) { "" } else { " not" }
                    ));
                }
            }
            let reply = client.push(SITE, vec![change.clone()]);
            let (total, this) = counts(&db, &change.change_id);
            if this == 1 {
                // Whatever was expected, the server now holds it: the chain goes on from it.
                last = change.clone();
            }
            match (allowed, reply) {
                (true, Ok(r)) if r.stored == 1 && this == 1 && total == stored + 1 => {}
                (true, Ok(r)) => wrong(format!(
                    "accepted, but stored {} (rows {stored} → {total}, this change {this})",
                    r.stored
                )),
                (true, Err(e)) => wrong(format!("allowed by the table, but refused: {e}")),
                (false, Err(SyncError::Refused { status, reason })) => {
                    if status != 403 {
                        wrong(format!("refused with {status}, not 403: {reason}"));
                    } else if !reason.contains(&refusal) {
                        wrong(format!("refused, but not naming the rule: {reason}"));
                    } else if !reason.contains(&change.change_id)
                        || !reason.contains("nothing of this push was stored")
                    {
                        wrong(format!("the refusal does not name the change: {reason}"));
                    } else if total != stored {
                        wrong(format!("refused, but rows went {stored} → {total}"));
                    }
                }
                (false, Ok(r)) => wrong(format!(
                    "refused by the table, but accepted (stored {})",
                    r.stored
                )),
                (false, Err(e)) => {
                    wrong(format!("refused by the table, but failed otherwise: {e}"))
                }
            }
            stored = total;
            rules.insert(case.label(), rule_name);
            cells.insert((case.label(), role), cell);
        }
    }

    let mut table = format!("{:<32}{:<26}", "change \\ role", "needs");
    for role in Role::ALL {
        let _ = write!(table, "{:<14}", role.as_str());
    }
    for case in &cases {
        let label = case.label();
        let _ = write!(table, "\n{label:<32}{:<26}", rules[&label]);
        for role in Role::ALL {
            let _ = write!(table, "{:<14}", cells[&(label.clone(), role)]);
        }
    }
    println!("{table}");
    assert!(
        mismatches.is_empty(),
        "the server disagrees with the permission table (!! below):\n{table}\n\n{}",
        mismatches.join("\n")
    );
    // Seeing results by arm is no change: the web view decides it (crates/web, its tests).
    let changes_decide = |a: &Action| *a != Action::ViewByArm;
    let missing: Vec<String> = Role::ALL
        .into_iter()
        .flat_map(|r| {
            Action::ALL
                .into_iter()
                .filter(changes_decide)
                .map(move |a| (r, a))
        })
        .filter(|p| !covered.contains(p))
        .map(|(r, a)| format!("{r} × {a}"))
        .collect();
    assert!(missing.is_empty(), "pairs not covered: {missing:?}");
    assert_eq!(
        covered.len(),
        Role::ALL.len() * Action::ALL.iter().filter(|a| changes_decide(a)).count()
    );

    // A role stated that the author does not hold in the registry, though the stated role may
    // make the change, and a change signed with another user's key: refused, nothing stored.
    let ctx = Ctx {
        subject: subject.clone(),
        hr_change,
        author: NURSE,
        index: 9,
        query: uuid::Uuid::now_v7().to_string(),
    };
    let forged = [
        (
            NURSE,
            Role::Investigator,
            Role::Nurse,
            Case::Kind(ChangeKind::ItemSet),
            "nurse held the role nurse, not investigator",
        ),
        (
            MONITOR,
            Role::DataManager,
            Role::Monitor,
            Case::Kind(ChangeKind::Locked),
            "monitor held the role monitor, not data_manager",
        ),
        (
            INVESTIGATOR,
            Role::Investigator,
            Role::Nurse,
            Case::Kind(ChangeKind::Signed),
            "does not verify against any key registered for investigator",
        ),
    ];
    for (author, stated, signer, case, rule) in forged {
        let change = next_change(&last, &author, stated, &keys[&signer], case, &ctx);
        // The stated role may make it: only the registry (or the signature) can refuse it.
        assert!(
            matches!(permission(&change), Permission::Needs(a) if stated.may(a)),
            "{}",
            case.label()
        );
        match client.push(SITE, vec![change.clone()]) {
            Err(SyncError::Refused {
                status: 403,
                reason,
            }) => {
                assert!(reason.contains(rule), "{reason}");
                assert!(reason.contains(&change.change_id), "{reason}");
                assert!(
                    reason.contains("nothing of this push was stored"),
                    "{reason}"
                );
            }
            other => panic!(
                "{} stating {stated}, signed by the {signer}'s key: {other:?}",
                author.username
            ),
        }
        assert_eq!(counts(&db, &change.change_id), (stored, 0));
    }
}
