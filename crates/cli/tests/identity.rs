//! One identity per person (issue 19, points 1 and 2), against the real `ecrf server`, a real
//! PostgreSQL and real stores: users change only on the server; another laptop's
//! administrator can neither change, deactivate nor reset a user of this laptop (the server
//! refuses it, and this laptop would ignore it anyway); a change signed with a forged key, not
//! signed, or stated with a role its author did not hold is refused with 403 and nothing
//! stored; a user deactivated on the server loses their key slot on every laptop at its next
//! sync and the store key changes, so their old password opens nothing, even with an old copy
//! of the key file.

mod server;

use ecrf_core::Role;
use ecrf_log::body::{Body, KeyBody};
use ecrf_log::{AuthorKey, Change, ChangeKind};
use ecrf_store::Store;
use ecrf_store::keyring::keyring_path;
use ecrf_sync::SyncError;
use ecrf_testkit::{ADMIN, NURSE, open_as};
use server::{Device, Server, fresh_database, psql, study};

fn setup() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&fresh_database(), dir.path());
    server.add_site("01");
    (dir, server)
}

/// The device's next change after `last`, of `kind` about user `item`, by `user` as `role`,
/// hashed, chained and signed with `key`: what a tampered app holding that key would send.
fn user_change(
    last: &Change,
    n: i64,
    (user, role, key): (&str, &str, &AuthorKey),
    kind: ChangeKind,
    item: &str,
    new_value: Option<String>,
) -> Change {
    let mut c = last.clone();
    c.device_seq = last.device_seq + 1;
    c.prev_hash = last.hash.clone();
    c.change_id = format!("01a2f000-0000-7000-8000-{n:012}");
    c.kind = kind;
    c.subject = None;
    c.form = None;
    c.item = Some(item.to_string());
    c.old_value = None;
    c.new_value = new_value;
    c.user = user.into();
    c.role = role.into();
    c.reason = None;
    c.warning = None;
    c.base = None;
    c.hash = c.compute_hash();
    key.sign(&mut c);
    c
}

fn refused(r: Result<ecrf_sync::wire::PushReply, SyncError>) -> String {
    match r {
        Err(SyncError::Refused {
            status: 403,
            reason,
        }) => reason,
        other => panic!("expected 403, got {other:?}"),
    }
}

#[test]
fn another_laptops_administrator_cannot_change_deactivate_or_reset_a_user_here() {
    let (dir, server) = setup();
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let b = Device::enrolled(dir.path(), "b", "01", &server);
    let count = || psql(&server.database_url, "SELECT count(*) FROM changes");

    // On B, the app refuses: users change on the server once a laptop is enrolled.
    let b_path = b.path.clone();
    drop(b);
    let mut b_admin = open_as(&b_path, &ADMIN);
    for e in [
        b_admin.change_role("nurse", Role::Admin).unwrap_err(),
        b_admin.deactivate_user("nurse").unwrap_err(),
        b_admin
            .reset_password("nurse", "another-long-phrase-for-nurse")
            .unwrap_err(),
        b_admin
            .add_user("li", "Li", Role::Nurse, "a-long-phrase-for-li-ward")
            .unwrap_err(),
    ] {
        assert!(
            e.to_string()
                .contains("users are created and changed there"),
            "{e}"
        );
    }
    drop(b_admin);
    let mut b = Device {
        store: open_as(&b_path, &NURSE),
        path: b_path,
    };
    b.sync();

    // A tampered app on B signs them with B's administrator's own key: the server refuses.
    let admin_key = b.author_key("admin", ADMIN.password);
    let last = b.last_own();
    let fresh_key = AuthorKey::from_seed(&[42; 32]);
    let before = count();
    for (n, (kind, value)) in [
        (ChangeKind::UserRole, Some("admin".to_string())),
        (ChangeKind::UserDeactivated, None),
        (
            ChangeKind::PasswordReset,
            Body::PasswordReset(KeyBody {
                public_key: Some(fresh_key.public_hex()),
            })
            .new_value(),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let c = user_change(
            &last,
            700 + n as i64,
            ("admin", "admin", &admin_key),
            kind,
            "nurse",
            value,
        );
        let why = refused(b.client().push("01", vec![c]));
        assert!(
            why.contains("users are created and changed on the server only"),
            "{why}"
        );
        assert!(why.contains("nothing of this push was stored"), "{why}");
    }
    assert_eq!(count(), before, "nothing of those pushes was stored");

    // Even had they reached A (through an old server), A's users stay as they are: A applies
    // user changes only from itself and the server. Applied directly, as a pull would.
    let c = user_change(
        &last,
        800,
        ("admin", "admin", &admin_key),
        ChangeKind::UserDeactivated,
        "nurse",
        None,
    );
    a.sync();
    let cursor = a.store.sync_state().unwrap().pulled;
    a.store.apply_remote(&[c], cursor).unwrap();
    let nurse = a
        .store
        .users()
        .unwrap()
        .into_iter()
        .find(|u| u.username == "nurse")
        .unwrap();
    assert!(nurse.active);
    assert_eq!(nurse.role, Role::Nurse);
    drop(a.store);
    let again = Store::open(&a.path, study(), "nurse", NURSE.password).unwrap();
    assert_eq!(again.session().role, Role::Nurse);
}

#[test]
fn a_change_is_refused_unless_signed_by_its_author_in_the_role_they_held() {
    let (dir, server) = setup();
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let subject = a.store.new_subject().unwrap();
    a.save(&subject, "DLY#1", &[("HR", "80")]);
    a.sync();
    let count = || psql(&server.database_url, "SELECT count(*) FROM changes");
    let before = count();
    let nurse_key = a.author_key("nurse", NURSE.password);
    let last = a.last_own();
    let edit = |n: i64, f: &dyn Fn(&mut Change)| {
        let mut c = last.clone();
        c.device_seq = last.device_seq + 1;
        c.prev_hash = last.hash.clone();
        c.change_id = format!("01a2f000-0000-7000-8000-{n:012}");
        c.kind = ChangeKind::ItemSet;
        c.item = Some("MAP".into());
        c.old_value = None;
        c.new_value = Some("{\"int\":70}".into());
        c.base = Some("[]".into());
        c.reason = None;
        c.warning = None;
        f(&mut c);
        c
    };
    // Not signed at all.
    let unsigned = edit(1, &|c| {
        c.hash = c.compute_hash();
        c.signature = None;
    });
    let why = refused(a.client().push("01", vec![unsigned]));
    assert!(why.contains("carries no author signature"), "{why}");
    // Signed by a key nobody registered (the store key's holder making one up).
    let forged = edit(2, &|c| {
        c.hash = c.compute_hash();
        AuthorKey::from_seed(&[13; 32]).sign(c);
    });
    let why = refused(a.client().push("01", vec![forged]));
    assert!(
        why.contains("does not verify against any key registered for nurse"),
        "{why}"
    );
    // The nurse's own key, stated as an investigator's change: she never held that role.
    let posing = edit(3, &|c| {
        c.role = "investigator".into();
        c.hash = c.compute_hash();
        nurse_key.sign(c);
    });
    let why = refused(a.client().push("01", vec![posing]));
    assert!(
        why.contains("held the role nurse, not investigator"),
        "{why}"
    );
    // A signature moved onto another change does not verify either.
    let mut moved = edit(4, &|c| {
        c.hash = c.compute_hash();
    });
    moved.signature = last.signature.clone();
    let why = refused(a.client().push("01", vec![moved]));
    assert!(why.contains("does not verify"), "{why}");
    assert_eq!(count(), before, "nothing of those pushes was stored");
    // The honest change goes through.
    let honest = edit(5, &|c| {
        c.hash = c.compute_hash();
        nurse_key.sign(c);
    });
    a.client().push("01", vec![honest]).unwrap();
}

#[test]
fn a_user_deactivated_on_the_server_cannot_open_any_laptop_even_with_an_old_key_file() {
    let (dir, server) = setup();
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let subject = a.store.new_subject().unwrap();
    a.save(&subject, "DLY#1", &[("HR", "80")]);
    a.sync();
    let old_keys = dir.path().join("old.keys");
    std::fs::copy(keyring_path(&a.path), &old_keys).unwrap();

    // A user made on the server reaches the laptop; the nurse is deactivated there.
    let made = server.add_user("li", "investigator", "Dr Li", "lantern-heron-quietly-42");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    server.admin(&["server", "user", "deactivate", "nurse", "--site", "01"]);
    drop(a.store);
    let mut admin = Device {
        store: open_as(&a.path, &ADMIN),
        path: a.path.clone(),
    };
    admin.sync();
    let users = admin.store.users().unwrap();
    let li = users
        .iter()
        .find(|u| u.username == "li")
        .expect("li arrived");
    assert_eq!((li.role, li.active), (Role::Investigator, true));
    let nurse = users.iter().find(|u| u.username == "nurse").unwrap();
    assert!(!nurse.active);
    assert!(
        !ecrf_store::Keyring::load(&a.path)
            .unwrap()
            .has_user("nurse")
    );
    // The laptop's history still verifies after the store key changed under it.
    assert!(admin.store.verify().unwrap().ok());
    drop(admin);

    // The nurse's password opens nothing: not with the key file now, nor with the old one.
    let e = Store::open(&a.path, study(), "nurse", NURSE.password)
        .err()
        .unwrap();
    assert!(matches!(e, ecrf_store::StoreError::UnknownUser(_)), "{e}");
    let current = dir.path().join("current.keys");
    std::fs::copy(keyring_path(&a.path), &current).unwrap();
    std::fs::copy(&old_keys, keyring_path(&a.path)).unwrap();
    let e = Store::open(&a.path, study(), "nurse", NURSE.password)
        .err()
        .unwrap();
    assert!(
        !matches!(
            e,
            ecrf_store::StoreError::WrongPassword(_) | ecrf_store::StoreError::UnknownUser(_)
        ),
        "the old slot unwraps the old key, which no longer opens the file: {e}"
    );
    // The administrator still opens it with the current key file; their edits are there.
    std::fs::copy(&current, keyring_path(&a.path)).unwrap();
    let s = open_as(&a.path, &ADMIN);
    assert_eq!(s.users().unwrap().len(), 3);

    // The server refuses the nurse's changes made after her deactivation, if any laptop sent
    // them: her registry role ends then.
    let refusal = psql(
        &server.database_url,
        "SELECT role FROM user_roles WHERE username = 'nurse' ORDER BY id DESC LIMIT 1",
    );
    assert_eq!(refusal.trim(), "");
}

#[test]
fn an_administrator_rekeys_a_store_and_an_old_key_file_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.ecrf");
    drop(ecrf_testkit::Site::new("01").with_nurse().create(&path));
    let old = dir.path().join("old.keys");
    std::fs::copy(keyring_path(&path), &old).unwrap();
    let out = std::process::Command::new(server::ecrf_bin())
        .args(["store", "rekey"])
        .env("ECRF_STORE", &path)
        .env("ECRF_USER", "admin")
        .env("ECRF_PASSWORD", ADMIN.password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("admin") && said.contains("nurse"), "{said}");
    // Everyone still opens it with the new key file.
    assert!(open_as(&path, &NURSE).verify().unwrap().ok());
    std::fs::copy(&old, keyring_path(&path)).unwrap();
    assert!(Store::open(&path, study(), "nurse", NURSE.password).is_err());
    // A nurse may not rekey.
    let out = std::process::Command::new(server::ecrf_bin())
        .args(["store", "rekey"])
        .env("ECRF_STORE", &path)
        .env("ECRF_USER", "nurse")
        .env("ECRF_PASSWORD", NURSE.password)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn a_user_made_on_the_server_logs_in_first_online_then_offline_and_signs_with_their_key() {
    let (dir, server) = setup();
    let mut a = Device::enrolled(dir.path(), "a", "01", &server);
    let subject = a.store.new_subject().unwrap();
    a.save(&subject, "DLY#1", &[("HR", "80")]);
    a.sync();
    let path = a.path.clone();
    drop(a);
    let pw = "lantern-heron-quietly-42";
    let made = server.add_user("li", "nurse", "Li Na", pw);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let weak = server.add_user("wu", "nurse", "", "password1");
    assert!(
        !weak.status.success(),
        "a weak password is refused on the server too"
    );

    // A wrong password: refused by the server, nothing written here.
    let e = ecrf_app::sync::open_or_first_login(&path, study(), "li", "not-her-password-at-all")
        .err()
        .unwrap();
    assert!(e.to_string().contains("not accepted"), "{e}");
    assert!(!ecrf_store::Keyring::load(&path).unwrap().has_user("li"));

    // The right one: online the first time; the sync brings her account.
    let mut li = ecrf_app::sync::open_or_first_login(&path, study(), "li", pw).unwrap();
    assert_eq!(li.session().role, Role::Nurse);
    assert!(
        li.users()
            .unwrap()
            .iter()
            .any(|u| u.username == "li" && u.name == "Li Na")
    );
    let key = ecrf_store::Keyring::load(&path)
        .unwrap()
        .unlock_author("li", pw)
        .unwrap()
        .1
        .unwrap();
    // Her changes are signed with the key the server registered (escrowed) and accepted.
    let form = ecrf_core::FormKey::parse(&study(), "DLY#1").unwrap();
    li.save(
        &subject,
        &form,
        &[("MAP", "71")],
        &ecrf_store::SaveOptions {
            reason: None,
            confirm_warnings: true,
        },
    )
    .unwrap();
    let mine = li.own_changes_after(0, 100_000).unwrap().pop().unwrap();
    assert_eq!(mine.user, "li");
    ecrf_log::author::check(&mine, &[key.public_hex()]).unwrap();
    let client = ecrf_sync::client::client_of(&li).unwrap();
    let report = ecrf_sync::sync(&mut li, &client, &mut |_| {}).unwrap();
    assert!(report.pushed >= 1);
    drop(li);

    // Later logins work offline.
    drop(server);
    let li = ecrf_app::sync::open_or_first_login(&path, study(), "li", pw).unwrap();
    assert_eq!(li.session().user, "li");
}

#[test]
fn a_laptop_administrator_online_creates_a_user_who_logs_in_on_another_laptop() {
    let (dir, server) = setup();
    let a = Device::enrolled(dir.path(), "a", "01", &server);
    let b = Device::enrolled(dir.path(), "b", "01", &server);
    let (a_path, b_path) = (a.path.clone(), b.path.clone());
    drop((a, b));
    let pw = "kestrel-window-ledger-77";

    // A nurse may not; the administrator may, online, signed with their key.
    let mut nurse = open_as(&a_path, &NURSE);
    let client = ecrf_sync::client::client_of(&nurse).unwrap();
    let e = ecrf_app::sync::add_user_online(
        &mut nurse,
        &client,
        ("zhao", "Zhao Lei", Role::Monitor),
        pw,
    )
    .unwrap_err();
    assert!(e.to_string().contains("may not"), "{e}");
    drop(nurse);
    let mut admin = open_as(&a_path, &ADMIN);
    ecrf_app::sync::add_user_online(&mut admin, &client, ("zhao", "Zhao Lei", Role::Monitor), pw)
        .unwrap();
    assert!(
        admin
            .users()
            .unwrap()
            .iter()
            .any(|u| u.username == "zhao" && u.role == Role::Monitor)
    );
    // The same name twice is refused, naming it.
    let e = ecrf_app::sync::add_user_online(
        &mut admin,
        &client,
        ("zhao", "Zhao Lei", Role::Monitor),
        pw,
    )
    .unwrap_err();
    assert!(e.to_string().contains("exists already"), "{e}");
    drop(admin);
    let registered = psql(
        &server.database_url,
        "SELECT role FROM user_roles WHERE username = 'zhao'",
    );
    assert_eq!(registered.trim(), "monitor");

    // The new monitor logs in on laptop B, the first time online.
    let zhao = ecrf_app::sync::open_or_first_login(&b_path, study(), "zhao", pw).unwrap();
    assert_eq!(zhao.session().role, Role::Monitor);
}
