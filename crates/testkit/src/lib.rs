//! The set-up the tests of several crates share, so a new test starts from one line instead of
//! a copied `Store::create` + "add the nurse". A dev-dependency only: never in a crate's
//! `[dependencies]` (sync, server, export and pdf must not reach `ecrf-store`).
//!
//! What it gives:
//! - [`study`]: the embedded study definition, loaded once per test binary.
//! - [`User`] and the fixed users [`ADMIN`], [`NURSE`], [`INVESTIGATOR`], [`MONITOR`],
//!   [`DATA_MANAGER`]: each `<username>-password`, long and strong enough for the store's
//!   password rule (the data manager's, too short as `dm-password`, ends in `-1`):
//!   `admin`/`admin-password`,
//!   `nurse`/`nurse-password`, `investigator`/`investigator-password`,
//!   `monitor`/`monitor-password`, `dm`/`dm-password-1`). A test that needs another name or
//!   password writes its own `User`, or takes one of these with [`User::with_password`].
//! - [`Site`]: a new store for a site, with its administrator and the users asked for, and
//!   optionally a lease of envelopes: `Site::new("07").with_nurse().create(&path)` is the
//!   store with the administrator logged in; [`Site::create_as`] closes it and opens it as one
//!   of its users.
//! - [`open_as`] / [`open`]: an existing store opened as a user.
//! - [`lease_csv`]: a site's allocation list (permuted blocks of 4) as the lease CSV a store loads.
//! - [`eligible_subject`]: a new subject screened eligible (core's sample screening) with the
//!   spouse's consent, on 1 March 2026 at 10:00 and 10:10 (UTC+8).
//! - [`randomized_subject`]: the same, randomized at 10:30 that day (the store needs a lease).
//! - [`ecmo_started_ago`]: moves a subject's ECMO start (SCR) to some minutes ago, so it can be
//!   randomized now, within the window after ECMO start.
//!
//! Every helper panics, naming what failed: set-up that fails is a failed test.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use ecrf_core::sample::{consent_by_spouse, eligible_screening};
use ecrf_core::{FormKey, Role, Study};
use ecrf_randomize::{ListSpec, Stratum, generate, to_csv};
use ecrf_store::{CreateOptions, Randomization, RecoveryKey, SaveOptions, Store};

/// The embedded study definition, loaded once per test binary.
pub fn study() -> Arc<Study> {
    static S: OnceLock<Arc<Study>> = OnceLock::new();
    Arc::clone(S.get_or_init(|| Arc::new(ecrf_core::trial::definition().expect("the study"))))
}

/// A user of a test store: login, full name, role and password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub username: &'static str,
    pub name: &'static str,
    pub role: Role,
    pub password: &'static str,
}

impl User {
    /// The same user with another password (e.g. the one a command-line test passes).
    pub const fn with_password(self, password: &'static str) -> User {
        User { password, ..self }
    }
}

/// The administrator every [`Site`] is created with: `admin` / `admin-password`.
pub const ADMIN: User = User {
    username: "admin",
    name: "Admin",
    role: Role::Admin,
    password: "admin-password",
};

/// The nurse of [`Site::with_nurse`]: `nurse` / `nurse-password`.
pub const NURSE: User = User {
    username: "nurse",
    name: "Nurse",
    role: Role::Nurse,
    password: "nurse-password",
};

/// An investigator: `investigator` / `investigator-password`, named "Dr investigator".
pub const INVESTIGATOR: User = User {
    username: "investigator",
    name: "Dr investigator",
    role: Role::Investigator,
    password: "investigator-password",
};

/// A monitor: `monitor` / `monitor-password`, named "Dr monitor".
pub const MONITOR: User = User {
    username: "monitor",
    name: "Dr monitor",
    role: Role::Monitor,
    password: "monitor-password",
};

/// A data manager: `dm` / `dm-password-1`, named "Dr dm".
pub const DATA_MANAGER: User = User {
    username: "dm",
    name: "Dr dm",
    role: Role::DataManager,
    password: "dm-password-1",
};

/// The statistician (`stat`).
pub const STATISTICIAN: User = User {
    username: "stat",
    name: "Dr stat",
    role: Role::Statistician,
    password: "stat-password-1",
};

/// A new store for one site: its administrator ([`ADMIN`] unless [`Site::admin`] says
/// otherwise), the users added with [`Site::with`], and optionally a lease of envelopes.
#[derive(Debug, Clone)]
pub struct Site {
    code: String,
    admin: User,
    users: Vec<User>,
    lease: Option<(usize, [u8; 32])>,
}

impl Site {
    /// Site `code` (e.g. "07") with only [`ADMIN`].
    pub fn new(code: &str) -> Site {
        Site {
            code: code.to_string(),
            admin: ADMIN,
            users: Vec::new(),
            lease: None,
        }
    }

    /// Another administrator than [`ADMIN`].
    pub fn admin(mut self, admin: User) -> Site {
        self.admin = admin;
        self
    }

    /// Adds `user` (in the order given).
    pub fn with(mut self, user: User) -> Site {
        self.users.push(user);
        self
    }

    /// Adds [`NURSE`].
    pub fn with_nurse(self) -> Site {
        self.with(NURSE)
    }

    /// Loads `envelopes` envelopes of the site's list (permuted blocks of 4 from `seed`; see
    /// [`lease_csv`]) after adding the users.
    pub fn with_lease(mut self, envelopes: usize, seed: [u8; 32]) -> Site {
        self.lease = Some((envelopes, seed));
        self
    }

    /// The options [`Site::create`] passes to `Store::create`.
    pub fn options(&self) -> CreateOptions {
        CreateOptions {
            site: self.code.clone(),
            admin_user: self.admin.username.into(),
            admin_name: self.admin.name.into(),
            admin_password: self.admin.password.into(),
        }
    }

    /// Creates the store at `path`; returns it with the administrator logged in.
    pub fn create(&self, path: &Path) -> Store {
        self.create_with_recovery(path).0
    }

    /// [`Site::create`], also returning the recovery key `Store::create` gives once.
    pub fn create_with_recovery(&self, path: &Path) -> (Store, RecoveryKey) {
        let (mut admin, recovery) =
            Store::create(path, study(), self.options()).expect("create the store");
        for u in &self.users {
            admin
                .add_user(u.username, u.name, u.role, u.password)
                .unwrap_or_else(|e| panic!("add user {}: {e}", u.username));
        }
        if let Some((envelopes, seed)) = self.lease {
            let csv = lease_csv(&self.code, envelopes, seed);
            admin.load_lease(&csv).expect("load the lease");
        }
        (admin, recovery)
    }

    /// Creates the store at `path`, closes the administrator's session and opens it as `user`.
    pub fn create_as(&self, path: &Path, user: &User) -> Store {
        drop(self.create(path));
        open_as(path, user)
    }
}

/// The fixed user named `username` ([`ADMIN`], [`NURSE`], [`INVESTIGATOR`], [`MONITOR`],
/// [`DATA_MANAGER`]), so a test that knows only the name finds the password in this one place.
pub fn fixed_user(username: &str) -> User {
    [ADMIN, NURSE, INVESTIGATOR, MONITOR, DATA_MANAGER]
        .into_iter()
        .find(|u| u.username == username)
        .unwrap_or_else(|| panic!("no fixed test user {username}"))
}

/// The store at `path` opened as `user`.
pub fn open_as(path: &Path, user: &User) -> Store {
    open(path, user.username, user.password)
}

/// The store at `path` opened as `username` with `password`.
pub fn open(path: &Path, username: &str, password: &str) -> Store {
    Store::open(path, study(), username, password)
        .unwrap_or_else(|e| panic!("open {} as {username}: {e}", path.display()))
}

/// The first `envelopes` slots of site `site`'s allocation list (permuted blocks of 4, seeded
/// by `seed`) as the lease CSV `Store::load_lease` reads.
pub fn lease_csv(site: &str, envelopes: usize, seed: [u8; 32]) -> String {
    let spec = ListSpec {
        stratum: Stratum::site(site).expect("a site code"),
        count: envelopes,
        block_sizes: vec![4],
    };
    to_csv(&generate(&spec, &seed).expect("an allocation list"))
}

/// A new subject with an eligible screening (`eligible_screening(scrno)`: screened on 1 March
/// 2026 at 10:00, UTC+8) and the spouse's consent at 10:10, warnings confirmed. Returns its id.
pub fn eligible_subject(store: &mut Store, scrno: &str) -> String {
    let id = store.new_subject().expect("a new subject");
    let confirm = SaveOptions {
        reason: None,
        confirm_warnings: true,
    };
    for (form, entries) in [
        ("SCR", eligible_screening(scrno)),
        ("CON", consent_by_spouse()),
    ] {
        let key = FormKey::parse(&study(), form).expect("a form key");
        store
            .save(&id, &key, &entries, &confirm)
            .unwrap_or_else(|e| panic!("{id} {form}: {e}"));
    }
    id
}

/// Corrects the subject's screening ECMO start (`SCR.ECMO_START_DT`) to `minutes` before now
/// (warnings confirmed, with a reason), so that `Store::randomize` at this instant is within
/// the study's window after ECMO start.
pub fn ecmo_started_ago(store: &mut Store, id: &str, minutes: i64) {
    let at = (chrono::Local::now().fixed_offset() - chrono::Duration::minutes(minutes))
        .format("%Y-%m-%dT%H:%M%:z")
        .to_string();
    let key = FormKey::parse(&study(), "SCR").expect("a form key");
    let opts = SaveOptions {
        reason: Some("ECMO start time corrected".into()),
        confirm_warnings: true,
    };
    store
        .save(id, &key, &[("ECMO_START_DT", at.as_str())], &opts)
        .unwrap_or_else(|e| panic!("{id} SCR ECMO_START_DT: {e}"));
}

/// An [`eligible_subject`] randomized at 10:30 on 1 March 2026 (UTC+8), from the store's lease.
pub fn randomized_subject(store: &mut Store, scrno: &str) -> (String, Randomization) {
    let id = eligible_subject(store, scrno);
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:30:00+08:00").unwrap();
    let r = store
        .randomize_at(&id, at)
        .unwrap_or_else(|e| panic!("randomize {id}: {e}"));
    (id, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_with_users_and_a_lease_randomizes_a_subject() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.ecrf");
        let site = Site::new("07")
            .with_nurse()
            .with(INVESTIGATOR)
            .with(MONITOR)
            .with(DATA_MANAGER)
            .with_lease(4, [1; 32]);
        let admin = site.create(&path);
        let users: Vec<String> = admin
            .users()
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(users.len(), 5, "{users:?}");
        drop(admin);
        let mut nurse = open_as(&path, &NURSE);
        let (id, r) = randomized_subject(&mut nurse, "07-001");
        assert_eq!(r.envelope, "07-E0001");
        assert_eq!(nurse.randomization(&id).unwrap(), Some(r));
        for u in [INVESTIGATOR, MONITOR, DATA_MANAGER, ADMIN] {
            drop(open_as(&path, &u));
        }
    }
}
