//! A stolen laptop gives little (issue 19, points 5 and 6): key slots at the current Argon2id
//! cost (older slots still open and are strengthened at the next login), passwords long and
//! hard to guess wherever they are set, secret files owner-only and never written through a
//! link, and a restore that refuses a backup of another store unless forced. Real SQLCipher
//! stores and key files throughout.

use std::fs;
use std::path::Path;

use ecrf_core::Role;
use ecrf_store::keyring::{KdfParams, keyring_path};
use ecrf_store::login_audit::pending_path;
use ecrf_store::{Keyring, Store, StoreError, backup};
use ecrf_testkit::{ADMIN, NURSE, Site, open_as, study};

fn slot_cost(path: &Path, user: &str) -> KdfParams {
    Keyring::load(path)
        .unwrap()
        .kdf_of(user)
        .unwrap_or_else(|| panic!("no slot for {user}"))
}

#[test]
fn new_slots_cost_at_least_64_mib_and_three_passes() {
    let current = KdfParams::CURRENT;
    assert!(current.m_kib >= 64 * 1024 && current.t >= 3, "{current:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.ecrf");
    drop(Site::new("01").with_nurse().create(&path));
    assert_eq!(slot_cost(&path, "admin"), current);
    assert_eq!(slot_cost(&path, "nurse"), current);
    let text = fs::read_to_string(keyring_path(&path)).unwrap();
    assert!(
        text.contains("\"m_kib\": 65536"),
        "the cost is recorded per slot: {text}"
    );
}

#[test]
fn slots_written_at_the_old_cost_still_open_and_are_strengthened_at_the_next_login() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.ecrf");
    drop(Site::new("01").with_nurse().create(&path));

    // The nurse's slot as an older version wrote it (19 MiB, t = 2, recorded); the
    // administrator's as a version that recorded no cost at all (read as the old default).
    let mut ring = Keyring::load(&path).unwrap();
    let (key, admin_key) = ring.unlock_author("admin", ADMIN.password).unwrap();
    let (_, nurse_key) = ring.unlock_author("nurse", NURSE.password).unwrap();
    ring.set_user(
        "nurse",
        NURSE.password,
        &key,
        nurse_key.as_ref(),
        KdfParams::LEGACY,
    )
    .unwrap();
    ring.set_user(
        "admin",
        ADMIN.password,
        &key,
        admin_key.as_ref(),
        KdfParams::LEGACY,
    )
    .unwrap();
    ring.save().unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(keyring_path(&path)).unwrap()).unwrap();
    for slot in json["slots"].as_array_mut().unwrap() {
        if slot["user"] == "admin" {
            slot.as_object_mut().unwrap().remove("kdf");
        }
    }
    fs::write(keyring_path(&path), json.to_string()).unwrap();
    assert_eq!(slot_cost(&path, "nurse"), KdfParams::LEGACY);
    assert_eq!(slot_cost(&path, "admin"), KdfParams::LEGACY);
    assert!(
        Keyring::load(&path)
            .unwrap()
            .is_weaker_than_current("admin")
    );

    // A wrong password changes nothing.
    assert!(matches!(
        Store::open(&path, study(), "nurse", "not-the-Password-9"),
        Err(StoreError::WrongPassword(_))
    ));
    assert_eq!(slot_cost(&path, "nurse"), KdfParams::LEGACY);

    // The right one opens the store and rewrites only that user's slot at the current cost.
    drop(open_as(&path, &NURSE));
    assert_eq!(slot_cost(&path, "nurse"), KdfParams::CURRENT);
    assert_eq!(slot_cost(&path, "admin"), KdfParams::LEGACY);
    drop(open_as(&path, &ADMIN));
    assert_eq!(slot_cost(&path, "admin"), KdfParams::CURRENT);
    assert!(
        !Keyring::load(&path)
            .unwrap()
            .is_weaker_than_current("admin")
    );

    // The same passwords open it afterwards; the recovery slot is untouched.
    let s = open_as(&path, &NURSE);
    assert_eq!(s.session().role, Role::Nurse);
    drop(s);
    let s = open_as(&path, &ADMIN);
    assert!(s.verify().unwrap().ok(), "the store is whole");
}

fn invalid<T>(r: Result<T, StoreError>) -> String {
    match r {
        Err(StoreError::Invalid(why)) => why,
        Err(other) => panic!("expected a refusal, got {other:?}"),
        Ok(_) => panic!("expected a refusal, it was accepted"),
    }
}

#[test]
fn passwords_are_twelve_characters_and_hard_to_guess_wherever_they_are_set() {
    let dir = tempfile::tempdir().unwrap();
    // Set-up.
    let short = Site::new("01").admin(ADMIN.with_password("Short-pw-9"));
    let why = invalid(Store::create(
        &dir.path().join("short.ecrf"),
        study(),
        short.options(),
    ));
    assert!(
        why.starts_with("password:") && why.contains("at least 12 characters"),
        "{why}"
    );
    assert!(why.contains("密码") && why.contains("12 个字符"), "{why}");
    assert!(
        !dir.path().join("short.ecrf").exists(),
        "nothing was created"
    );
    let weak = Site::new("01").admin(ADMIN.with_password("passwordpassword"));
    let why = invalid(Store::create(
        &dir.path().join("weak.ecrf"),
        study(),
        weak.options(),
    ));
    assert!(
        why.starts_with("password:") && why.contains("too easy to guess"),
        "{why}"
    );
    assert!(
        why.contains("密码") && why.contains("过于容易被猜到"),
        "{why}"
    );

    // A new user, a reset, one's own change: the same rule, and nothing written when refused.
    let path = dir.path().join("w.ecrf");
    let mut admin = Site::new("01").with_nurse().create(&path);
    let head = admin.head().0;
    for weak in [
        "short-1",
        "123456789012",
        "qwertyuiopasdf",
        "admin-admin-admin",
    ] {
        let why = invalid(admin.add_user("wang", "Wang", Role::Nurse, weak));
        assert!(why.starts_with("password:"), "{weak}: {why}");
        let why = invalid(admin.reset_password("nurse", weak));
        assert!(why.starts_with("password:"), "{weak}: {why}");
        let why = invalid(admin.set_password(weak));
        assert!(why.starts_with("password:"), "{weak}: {why}");
    }
    // The user's own name does not make a password strong.
    let why = invalid(admin.add_user("kestrelharbour", "K", Role::Nurse, "kestrelharbour1"));
    assert!(why.contains("too easy to guess"), "{why}");
    assert_eq!(admin.head().0, head, "no refused password was recorded");
    assert!(!Keyring::load(&path).unwrap().has_user("wang"));

    admin
        .add_user("wang", "Wang", Role::Nurse, "ward-kestrel-harbour")
        .unwrap();
    admin
        .reset_password("nurse", "lantern-copper-valley")
        .unwrap();
    admin.set_password("orchid-tunnel-maple-7").unwrap();
    drop(admin);
    drop(ecrf_testkit::open(&path, "wang", "ward-kestrel-harbour"));
    drop(ecrf_testkit::open(&path, "nurse", "lantern-copper-valley"));
    drop(ecrf_testkit::open(&path, "admin", "orchid-tunnel-maple-7"));
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn secret_files_are_owner_only_and_never_written_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.ecrf");
    let mut admin = Site::new("01").create(&path);
    assert_eq!(mode(&keyring_path(&path)), 0o600, "key file");
    let out = dir.path().join("w.backup");
    admin.backup(&out).unwrap();
    assert_eq!(mode(&out), 0o600, "backup");

    // A link where the temporary key file goes: the key file is written beside it, the link's
    // target is never touched.
    let victim = dir.path().join("victim.txt");
    fs::write(&victim, "do not touch").unwrap();
    let tmp = dir.path().join("w.ecrf.keys.tmp");
    std::os::unix::fs::symlink(&victim, &tmp).unwrap();
    admin
        .add_user("wang", "Wang", Role::Nurse, "ward-kestrel-harbour")
        .unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "do not touch");
    assert!(
        !tmp.exists() && fs::symlink_metadata(&tmp).is_err(),
        "no temporary file left"
    );
    assert!(fs::symlink_metadata(keyring_path(&path)).unwrap().is_file());
    assert_eq!(mode(&keyring_path(&path)), 0o600);
    drop(admin);

    // The failed-login file: owner-only; a link put in its place is refused, not followed
    // (the wrong password is still refused as such).
    assert!(Store::open(&path, study(), "admin", "not-the-Password-9").is_err());
    assert_eq!(mode(&pending_path(&path)), 0o600, "failed-login file");
    fs::remove_file(pending_path(&path)).unwrap();
    std::os::unix::fs::symlink(&victim, pending_path(&path)).unwrap();
    assert!(matches!(
        Store::open(&path, study(), "admin", "not-the-Password-9"),
        Err(StoreError::WrongPassword(_))
    ));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "do not touch");
}

#[test]
fn restore_refuses_a_backup_of_another_store_unless_an_administrator_forces_it() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.ecrf");
    let theirs = dir.path().join("theirs.ecrf");
    let a = Site::new("01").create(&ours);
    let b = Site::new("01").create(&theirs);
    let id = |p: &Path| Keyring::load(p).unwrap().store_id().to_string();
    let (our_id, their_id) = (id(&ours), id(&theirs));
    assert_ne!(our_id, their_id);
    let our_backup = dir.path().join("ours.backup");
    let their_backup = dir.path().join("theirs.backup");
    a.backup(&our_backup).unwrap();
    b.backup(&their_backup).unwrap();
    drop((a, b));

    let why = invalid(backup::restore(
        &their_backup,
        &ours,
        study(),
        ADMIN.username,
        ADMIN.password,
        false,
    ));
    assert!(
        why.contains("backup of another store")
            && why.contains(&their_id)
            && why.contains("--force"),
        "{why}"
    );
    assert_eq!(
        Keyring::load(&ours).unwrap().store_id(),
        our_id,
        "nothing replaced"
    );
    assert!(
        fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("before-restore")),
        "nothing was moved aside"
    );

    // Its own backup restores without forcing.
    backup::restore(
        &our_backup,
        &ours,
        study(),
        ADMIN.username,
        ADMIN.password,
        false,
    )
    .unwrap();
    assert_eq!(Keyring::load(&ours).unwrap().store_id(), our_id);

    // Forced by an administrator, the other store's backup replaces this one.
    let done = backup::restore(
        &their_backup,
        &ours,
        study(),
        ADMIN.username,
        ADMIN.password,
        true,
    )
    .unwrap();
    assert!(done.kept_aside.is_some());
    assert_eq!(Keyring::load(&ours).unwrap().store_id(), their_id);
}
