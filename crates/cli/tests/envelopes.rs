//! Concealed envelopes (issue 19, point 3) against the real `ecrf server`, a real PostgreSQL
//! and real stores: after a lease is loaded, no unopened envelope's arm can be read through
//! any command of any role, the audit CSV, any export format, a printout, the sync pages
//! another laptop pulls, the server's copy of the log or any log; leasing needs an
//! administrator; an envelope opened out of order is flagged on the server and a tampered arm
//! is refused with nothing stored.

mod server;

use std::path::Path;
use std::process::Command;

use ecrf_log::body::Opened;
use ecrf_log::{Change, ChangeKind};
use ecrf_randomize::{ListSpec, Stratum, generate, to_csv};
use ecrf_sync::SyncError;
use ecrf_testkit::{ADMIN, DATA_MANAGER, INVESTIGATOR, MONITOR, NURSE, Site, User, open_as};
use server::{Device, Server, ecrf_bin, fresh_database, psql};

/// An envelope still sealed on the leasing laptop, as the coordinating centre's list has it.
#[derive(Debug, Clone)]
struct Sealed {
    envelope: String,
    seq: u32,
    /// The subject number it would give (`01-R0002`): the envelope's position, in other words.
    subject_no: String,
    arm: String,
    nonce: String,
    commitment: String,
}

/// Everything a person or a program could read, by where it came from.
#[derive(Default)]
struct Outputs(Vec<(String, Vec<u8>)>);

impl Outputs {
    fn add(&mut self, from: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.0.push((from.into(), bytes.into()));
    }

    /// Every file under `dir` (exports, printouts as text).
    fn add_dir(&mut self, label: &str, dir: &Path) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                self.add_dir(label, &p);
            } else if p.extension().is_some_and(|x| x == "pdf") {
                self.add(format!("{label} {}", p.display()), pdf_text(&p));
            } else {
                self.add(
                    format!("{label} {}", p.display()),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }

    /// Where an output shows a sealed envelope's arm: a record (line, NUL-separated field run
    /// or change) naming the envelope or the subject number it would give together with an arm
    /// code, or the envelope's nonce (with the arm, its proof) anywhere.
    fn leaks(&self, sealed: &[Sealed]) -> Vec<String> {
        let mut found = Vec::new();
        for (from, bytes) in &self.0 {
            let text = String::from_utf8_lossy(bytes);
            for s in sealed {
                if text.contains(&s.nonce) {
                    found.push(format!("{from}: the nonce of {}", s.envelope));
                }
            }
            for record in text.split(['\n', '\0']) {
                for s in sealed {
                    let names = record.contains(&s.envelope) || record.contains(&s.subject_no);
                    if names && (record.contains("ECMO_IABP") || record.contains(&s.arm)) {
                        found.push(format!(
                            "{from}: {} shown with an arm: {}",
                            s.envelope,
                            record.chars().take(300).collect::<String>()
                        ));
                    }
                }
            }
        }
        found
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

fn pdf_text(pdf: &Path) -> Vec<u8> {
    let out = Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (Debian package poppler-utils)");
    assert!(out.status.success(), "pdftotext {}", pdf.display());
    out.stdout
}

/// `ecrf ARGS` on a store as a user: stdout and stderr, whatever the exit status.
fn ecrf(store: &Path, user: &User, args: &[&str]) -> (bool, Vec<u8>) {
    let out = Command::new(ecrf_bin())
        .args(args)
        .env("ECRF_STORE", store)
        .env("ECRF_USER", user.username)
        .env("ECRF_PASSWORD", user.password)
        .env("ECRF_SIGN_PASSWORD", user.password)
        .env("RUST_LOG", "debug")
        .env_remove("ECRF_LANG")
        .output()
        .expect("run ecrf");
    let mut all = out.stdout;
    all.extend_from_slice(&out.stderr);
    (out.status.success(), all)
}

/// A laptop of site 01 with every role, enrolled with the server.
fn laptop(dir: &Path, name: &str, server: &Server) -> Device {
    let path = dir.join(format!("{name}.ecrf"));
    let store = Site::new("01")
        .with(NURSE)
        .with(INVESTIGATOR)
        .with(MONITOR)
        .with(DATA_MANAGER)
        .create_as(&path, &NURSE);
    let code = server.enrol_code("01", store.device_id());
    ecrf_sync::enrol(&store, &server.url(), &code, None).unwrap();
    Device { store, path }
}

/// This device's next change after `last`, hashed and chained as a store would (what a
/// tampered app could send).
fn next_change(
    last: &Change,
    n: i64,
    key: &ecrf_log::AuthorKey,
    edit: impl FnOnce(&mut Change),
) -> Change {
    let mut c = last.clone();
    c.device_seq = last.device_seq + 1;
    c.prev_hash = last.hash.clone();
    c.change_id = format!("01a2f000-0000-7000-8000-{n:012}");
    c.old_value = None;
    c.reason = None;
    c.warning = None;
    c.base = None;
    edit(&mut c);
    c.hash = c.compute_hash();
    key.sign(&mut c);
    c
}

/// A `subject.randomize` opening `s` for `subject` with the arm and nonce given.
fn opening(
    last: &Change,
    n: i64,
    key: &ecrf_log::AuthorKey,
    (subject, s): (&str, &Sealed),
    arm: &str,
    nonce: &str,
) -> Change {
    let body = Opened {
        envelope: s.envelope.clone(),
        arm: arm.to_string(),
        subject_no: s.subject_no.clone(),
        stratum: "01".into(),
        server: false,
        nonce: Some(nonce.to_string()),
    };
    next_change(last, n, key, |c| {
        c.kind = ChangeKind::Randomized;
        c.user = "nurse".into();
        c.role = "nurse".into();
        c.subject = Some(subject.to_string());
        c.form = Some("RND".into());
        c.item = Some(s.envelope.clone());
        c.new_value = Some(serde_json::to_string(&body).unwrap());
    })
}

fn other_arm(arm: &str) -> &'static str {
    if arm == "ECMO" { "ECMO_IABP" } else { "ECMO" }
}

#[test]
fn no_unopened_arm_is_readable_anywhere_and_the_server_checks_every_opening() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_logging(&fresh_database(), dir.path());
    server.add_site("01");
    let db = server.database_url.clone();
    let list = generate(
        &ListSpec {
            stratum: Stratum::site("01").unwrap(),
            count: 24,
            block_sizes: vec![4],
        },
        &[11; 32],
    )
    .unwrap();
    let file = dir.path().join("list.csv");
    std::fs::write(&file, to_csv(&list)).unwrap();
    server.admin(&["randomization", "upload", "--list", file.to_str().unwrap()]);

    let mut a = laptop(dir.path(), "a", &server);
    let mut b = laptop(dir.path(), "b", &server);
    a.sync();
    b.sync();
    let a_device = a.store.device_id().to_string();

    // Leasing needs an administrator: the store refuses a nurse's session, and the server a
    // request naming a nurse or an unknown user, even with the device's valid token.
    let client = a.client();
    assert!(matches!(
        ecrf_app::sync::fetch_lease(&mut a.store, &client, 1),
        Err(SyncError::Store(_))
    ));
    // A request signed by the nurse (a tampered app), or naming someone the registry lacks.
    let nurse_key = a.author_key("nurse", NURSE.password);
    for who in ["nurse", "ghost"] {
        let utc = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let req = ecrf_sync::wire::LeaseRequest {
            blocks: 1,
            administrator: who.into(),
            signature: nurse_key.sign_bytes(&ecrf_sync::wire::LeaseRequest::message(
                &a_device, "01", 1, who, &utc,
            )),
            utc,
        };
        match client.lease("01", &req) {
            Err(SyncError::Refused {
                status: 403,
                reason,
            }) => {
                assert!(reason.contains("only an active administrator"), "{reason}")
            }
            other => panic!("a lease asked by {who}: {other:?}"),
        }
    }
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM allocation WHERE state = 'leased'"
        ),
        "0"
    );

    // The administrator of A leases two blocks (8 envelopes), sealed to A.
    drop(std::mem::replace(&mut a.store, open_as(&a.path, &ADMIN)));
    assert_eq!(
        ecrf_app::sync::fetch_lease(&mut a.store, &client, 2).unwrap(),
        8
    );
    let counts = a.store.envelope_counts().unwrap();
    assert_eq!((counts[0].unopened, counts[0].opened), (8, 0));
    drop(std::mem::replace(&mut a.store, open_as(&a.path, &NURSE)));

    // One subject randomized from the first envelope, offline; another screened, waiting.
    let first = ecrf_testkit::eligible_subject(&mut a.store, "01-001");
    ecrf_testkit::ecmo_started_ago(&mut a.store, &first, 60);
    let r = a.store.randomize(&first).unwrap();
    assert_eq!(r.envelope, "01-E0001");
    let waiting = ecrf_testkit::eligible_subject(&mut a.store, "01-002");
    a.sync();
    b.sync();
    b.sync();

    // The coordinating centre's list: what is sealed on A, with each nonce and commitment.
    let rows = psql(
        &db,
        &format!(
            "SELECT envelope, seq, arm, nonce, commitment FROM allocation \
             WHERE device = '{a_device}' AND state = 'leased' ORDER BY seq"
        ),
    );
    let sealed: Vec<Sealed> = rows
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let seq: u32 = f[1].parse().unwrap();
            Sealed {
                envelope: f[0].into(),
                seq,
                subject_no: format!("01-R{seq:04}"),
                arm: f[2].into(),
                nonce: f[3].into(),
                commitment: f[4].into(),
            }
        })
        .collect();
    assert_eq!(sealed.len(), 7);
    assert_eq!(
        psql(
            &db,
            "SELECT state FROM allocation WHERE envelope = '01-E0001'"
        ),
        "opened"
    );
    // The lease in A's log holds the same commitments as the server's list, and no arm.
    let lease_body = a
        .store
        .all_changes()
        .unwrap()
        .into_iter()
        .find(|c| c.kind == ChangeKind::LeaseLoaded)
        .and_then(|c| c.new_value)
        .unwrap();
    for s in &sealed {
        assert!(lease_body.contains(&s.commitment), "{}", s.envelope);
        assert!(ecrf_randomize::seal::matches(
            "01",
            s.seq,
            &s.arm,
            &s.nonce,
            &s.commitment
        ));
    }
    assert!(!lease_body.contains("ECMO"), "{lease_body}");

    // Every output of every role on both laptops.
    let mut out = Outputs::default();
    let users = [ADMIN, NURSE, INVESTIGATOR, MONITOR, DATA_MANAGER];
    for (laptop, path) in [("A", &a.path), ("B", &b.path)] {
        for user in &users {
            let who = format!("{laptop} {}", user.username);
            let files = dir.path().join(format!("out-{laptop}-{}", user.username));
            std::fs::create_dir_all(&files).unwrap();
            let f = |name: &str| files.join(name).to_str().unwrap().to_string();
            let mut commands: Vec<Vec<String>> = vec![
                vec!["subject".into(), "list".into()],
                vec!["randomization".into(), "envelopes".into()],
                vec!["screening".into(), "log".into()],
                vec!["screening".into(), "consort".into()],
                vec!["query".into(), "list".into()],
                vec!["lock".into(), "list".into()],
                vec!["conflict".into(), "list".into()],
                vec!["audit".into(), "verify".into()],
                vec!["store".into(), "check".into()],
                vec!["user".into(), "list".into()],
                vec!["audit".into(), "export".into(), "-o".into(), f("audit.csv")],
                vec![
                    "export".into(),
                    "all".into(),
                    "--include-audit".into(),
                    "-o".into(),
                    f("export"),
                ],
            ];
            for s in [&first, &waiting] {
                for args in [
                    vec!["audit", "log", s],
                    vec!["subject", "outcome", s],
                    vec!["signatures", s],
                    vec!["form", "show", s, "RND"],
                    vec!["form", "show", s, "SCR"],
                ] {
                    commands.push(args.into_iter().map(String::from).collect());
                }
                commands.push(vec![
                    "print".into(),
                    "subject".into(),
                    s.clone(),
                    "-o".into(),
                    f(&format!("{s}.pdf")),
                ]);
            }
            // The randomize command itself, refused for a subject randomized already.
            commands.push(vec!["randomize".into(), first.clone()]);
            for args in &commands {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let (_, said) = ecrf(path, user, &args);
                out.add(format!("{who}: ecrf {}", args.join(" ")), said);
            }
            out.add_dir(&who, &files);
        }
    }
    // What another laptop pulls (the sync pages, raw), and what it holds after sync.
    let page = b.client().pull("01", 0, 1000).unwrap();
    for c in page.changes.iter() {
        out.add("B's pull page", serde_json::to_string(c).unwrap());
    }
    for c in b.store.all_changes().unwrap() {
        out.add("B's log", serde_json::to_string(&c).unwrap());
    }
    // The server: its copy of the site's log, its flags, its own log file.
    out.add(
        "server changes",
        psql(&db, "SELECT body FROM changes ORDER BY seq"),
    );
    out.add("server flags", server.admin(&["site", "flags", "01"]));
    out.add("server log", std::fs::read(&server.log).unwrap());

    // The search can fail: the opened envelope shows with its arm in these outputs, and an
    // old-style lease (arms in the log) would be found.
    let opened = Sealed {
        envelope: "01-E0001".into(),
        seq: 1,
        subject_no: r.subject_no.clone(),
        arm: r.arm.clone(),
        nonce: "no nonce to look for".into(),
        commitment: String::new(),
    };
    let shown = out.leaks(std::slice::from_ref(&opened));
    for place in [
        "audit.csv",
        "export/audit_trail.csv",
        ".pdf",
        "ecrf audit log",
        "B's pull page",
        "B's log",
        "server changes",
    ] {
        assert!(
            shown.iter().any(|s| s.contains(place)),
            "the opened envelope's arm is shown in {place} (searched {} outputs)",
            out.len()
        );
    }
    // Every export format was written and searched.
    let export = dir.path().join("out-A-dm/export");
    let written: Vec<String> = std::fs::read_dir(&export)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for ext in [".csv", ".dta", ".sav", ".xpt", ".xml", ".R"] {
        assert!(
            written.iter().any(|f| f.ends_with(ext)),
            "{ext} in {written:?}"
        );
    }
    let mut old_style = Outputs::default();
    old_style.add(
        "an old lease.load",
        format!(
            r#"[{{"envelope":"{}","stratum":"01","seq":{},"block":1,"block_size":4,"arm":"{}"}}]"#,
            sealed[0].envelope, sealed[0].seq, sealed[0].arm
        ),
    );
    assert_eq!(old_style.leaks(&sealed).len(), 1);

    let leaks = out.leaks(&sealed);
    assert!(leaks.is_empty(), "sealed arms readable: {leaks:#?}");
    assert!(out.len() > 300, "{} outputs searched", out.len());

    // A tampered arm is refused whole, nothing stored, and the attempt flagged.
    // (What the commands above recorded, exports and all, reaches the server first.)
    a.sync();
    let client = a.client();
    let nurse_key = a.author_key("nurse", NURSE.password);
    let last = a.last_own();
    let before = psql(&db, "SELECT count(*) FROM changes");
    let next = &sealed[0];
    for (n, (arm, nonce)) in [
        (other_arm(&next.arm), next.nonce.as_str()),
        (next.arm.as_str(), &"00".repeat(32)[..]),
    ]
    .into_iter()
    .enumerate()
    {
        let forged = opening(
            &last,
            900 + n as i64,
            &nurse_key,
            (&waiting, next),
            arm,
            nonce,
        );
        match client.push("01", vec![forged]) {
            Err(SyncError::Refused {
                status: 403,
                reason,
            }) => {
                assert!(reason.contains("tampered arm"), "{reason}");
                assert!(reason.contains(&next.envelope), "{reason}");
                assert!(
                    reason.contains("nothing of this push was stored"),
                    "{reason}"
                );
            }
            other => panic!("a tampered arm: {other:?}"),
        }
    }
    // The true arm and nonce in the opening, but the other arm in RND ARM: refused too.
    let honest = opening(
        &last,
        920,
        &nurse_key,
        (&waiting, next),
        &next.arm,
        &next.nonce,
    );
    let arm_value = next_change(&honest, 921, &nurse_key, |c| {
        c.kind = ChangeKind::ItemSet;
        c.item = Some("ARM".into());
        c.base = Some("[]".into());
        c.new_value = Some(ecrf_core::Value::Code(other_arm(&next.arm).into()).to_json());
    });
    match client.push("01", vec![honest, arm_value]) {
        Err(SyncError::Refused {
            status: 403,
            reason,
        }) => {
            assert!(reason.contains("records an RND ARM"), "{reason}");
            assert!(reason.contains("tampered arm"), "{reason}");
        }
        other => panic!("a tampered RND ARM: {other:?}"),
    }
    assert_eq!(psql(&db, "SELECT count(*) FROM changes"), before);
    assert_eq!(
        psql(
            &db,
            &format!(
                "SELECT state FROM allocation WHERE envelope = '{}'",
                next.envelope
            )
        ),
        "leased"
    );

    // An envelope opened out of order (the fourth, with its true arm and nonce, while the
    // second and third are sealed) is kept and flagged for the coordinating centre.
    let skip = &sealed[2];
    let jump = opening(
        &last,
        950,
        &nurse_key,
        (&waiting, skip),
        &skip.arm,
        &skip.nonce,
    );
    let reply = client.push("01", vec![jump.clone()]).unwrap();
    assert_eq!(reply.stored, 1);
    assert!(
        reply.flags.iter().any(|f| f.contains("out of order")),
        "{:?}",
        reply.flags
    );
    let flags = server.admin(&["site", "flags", "01"]);
    let order: Vec<&str> = flags
        .lines()
        .filter(|l| l.contains("envelope_order"))
        .collect();
    assert_eq!(order.len(), 1, "{flags}");
    assert!(order[0].contains(&jump.change_id), "{flags}");
    assert!(
        order[0].contains(&sealed[0].envelope) && order[0].contains(&sealed[1].envelope),
        "names the envelopes skipped: {flags}"
    );
    assert_eq!(
        flags
            .lines()
            .filter(|l| l.contains("envelope_tampered"))
            .count(),
        3,
        "{flags}"
    );
    // The flags name no arm of an envelope still sealed.
    let mut flag_out = Outputs::default();
    flag_out.add("server flags", flags);
    let still_sealed: Vec<Sealed> = sealed
        .iter()
        .filter(|s| s.envelope != skip.envelope)
        .cloned()
        .collect();
    assert!(flag_out.leaks(&still_sealed).is_empty());
}
