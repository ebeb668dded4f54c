//! Who uses the app: the first screen, setting a laptop up, the demo store, login and lock, the
//! session's preferences and the store's users. Invariant: locking drops the store (and its key)
//! from memory; failed logins are throttled before the store is even opened.

use super::*;

impl App {
    /// What the first screen shows.
    pub fn welcome(&self) -> AppResult<Welcome> {
        Ok(Welcome {
            store_exists: self.path().exists(),
            store_path: self.path().display().to_string(),
            demo: self.using_demo,
            session: match &self.store {
                Some(_) => Some(self.session()?),
                None => None,
            },
        })
    }

    /// The study definition in force at the site today (the base version until an
    /// amendment is activated, or when no one is logged in); `blocked` says why nothing new
    /// may be entered when this app cannot use the version in force.
    pub fn study(&self) -> StudyDto {
        let Ok(store) = self.store() else {
            return study_dto(&self.study);
        };
        match store.study_in_force() {
            Ok(s) => study_dto(&s),
            Err(e) => StudyDto {
                blocked: Some(e.to_string()),
                ..study_dto(&self.study)
            },
        }
    }

    /// First-run set-up: creates the store and logs the administrator in.
    pub fn setup(&mut self, mut input: SetupInput) -> AppResult<SetupDone> {
        let path = self.path().to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(ErrorCode::Internal, format!("{}: {e}", dir.display())))?;
        }
        let (store, recovery) = Store::create(
            &path,
            Arc::clone(&self.study),
            CreateOptions {
                site: std::mem::take(&mut input.site),
                admin_user: std::mem::take(&mut input.admin_user),
                admin_name: std::mem::take(&mut input.admin_name),
                // Taken, not copied: `CreateOptions` wipes it when dropped.
                admin_password: std::mem::take(&mut input.password),
            },
        )?;
        self.store = Some(store);
        Ok(SetupDone {
            recovery_key: recovery.as_str().to_string(),
        })
    }

    /// Switches to the demo store, creating it with sample data the first time.
    pub fn use_demo(&mut self) -> AppResult<Welcome> {
        self.store = None;
        self.using_demo = true;
        if !self.demo_path.exists() {
            demo::create(&self.demo_path, Arc::clone(&self.study))
                .map_err(|e| err(ErrorCode::Internal, e))?;
        }
        self.welcome()
    }

    /// Logs in. Failed attempts are slowed: after three, each further try must wait longer.
    pub fn login(&mut self, user: &str, password: &str) -> AppResult<SessionDto> {
        let user = user.trim();
        if let Some(wait) = self.throttle.wait_for(user) {
            return Err(err(
                ErrorCode::Throttled,
                format!("too many failed attempts: wait {} s", wait.as_secs().max(1)),
            ));
        }
        self.store = None;
        let opened =
            crate::sync::open_or_first_login(self.path(), Arc::clone(&self.study), user, password)
                .map_err(|e| match e {
                    ecrf_sync::SyncError::Store(s) => match s.downcast::<StoreError>() {
                        Ok(s) => *s,
                        Err(other) => StoreError::Invalid(other.to_string()),
                    },
                    other => StoreError::Invalid(format!("first login on this laptop: {other}")),
                });
        match opened {
            Ok(store) => {
                self.throttle.succeeded(user);
                self.store = Some(store);
                self.session()
            }
            // One answer for both, so a login screen does not reveal which user names exist.
            Err(StoreError::WrongPassword(_) | StoreError::UnknownUser(_)) => {
                self.throttle.failed(user);
                Err(err(ErrorCode::BadLogin, "wrong user name or password"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Locks: forgets the open store; the user must log in again.
    pub fn lock(&mut self) {
        if let Some(mut store) = self.store.take() {
            // Best effort: the WAL is checkpointed on close anyway.
            let _ = store.checkpoint();
        }
    }

    /// The logged-in session.
    pub fn session(&self) -> AppResult<SessionDto> {
        let store = self.store()?;
        let s = store.session();
        let name = store
            .users()?
            .into_iter()
            .find(|u| u.username == s.user)
            .map(|u| u.name)
            .unwrap_or_default();
        Ok(SessionDto {
            user: s.user.clone(),
            name,
            role: s.role,
            // A preference this version cannot read falls back to English.
            lang: store
                .preference("lang")?
                .and_then(|l| l.parse().ok())
                .unwrap_or_default(),
            lock_minutes: store
                .preference("lock_minutes")?
                .and_then(|m| m.parse().ok())
                .unwrap_or(DEFAULT_LOCK_MINUTES),
            site: store.site().to_string(),
            may_enter: s.role.may(ecrf_core::Action::EnterData),
            may_manage_users: s.role.may(ecrf_core::Action::ManageUsers),
            may_export: s.role.may(ecrf_core::Action::Export),
            print_folder: self.print_folder()?,
        })
    }

    /// Remembers the user's language.
    pub fn set_lang(&mut self, lang: Lang) -> AppResult<SessionDto> {
        self.store()?.set_preference("lang", lang.code())?;
        self.session()
    }

    /// Remembers the user's lock delay (1–120 minutes).
    pub fn set_lock_minutes(&mut self, minutes: u32) -> AppResult<SessionDto> {
        if !(1..=120).contains(&minutes) {
            return Err(err(ErrorCode::Invalid, "lock after: 1 to 120 minutes"));
        }
        self.store()?
            .set_preference("lock_minutes", &minutes.to_string())?;
        self.session()
    }

    /// Users of the store, active or not.
    pub fn users(&self) -> AppResult<Vec<User>> {
        Ok(self.store()?.users()?)
    }

    /// Adds a user (administrators). On an enrolled laptop the user is created on the server
    /// (online: the request signed with the administrator's key), and this laptop syncs to
    /// receive them; a laptop without a server adds them here.
    pub fn add_user(
        &mut self,
        username: &str,
        name: &str,
        role: Role,
        password: &str,
    ) -> AppResult<()> {
        let (username, name) = (username.trim(), name.trim());
        match self.sync_client()? {
            None => {
                self.store_mut()?.add_user(username, name, role, password)?;
            }
            Some(client) => {
                crate::sync::add_user_online(
                    self.store_mut()?,
                    &client,
                    (username, name, role),
                    password,
                )?;
            }
        }
        Ok(())
    }
}
