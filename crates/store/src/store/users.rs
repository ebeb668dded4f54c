//! Users of a store: adding them, passwords (own change, administrator reset), roles,
//! deactivation, and the list.
//!
//! Owns the rules for user names (2–32 of a-z, 0-9, `.`, `_`, `-`) and passwords (12 characters
//! or more, and hard to guess by the zxcvbn estimator: a score of at least 3 of 4, with the user
//! name and the trial's own words counted as known), checked wherever a password is set:
//! set-up, a new user, an administrator's reset, one's own change. Invariants: every account event is a change in the log (projected into `users` by
//! `apply`); a user's key slot is written inside the same write lock as its change
//! (`commit_with_slot`), from the key file as it is then, so a slot written meanwhile by another
//! session is kept; nobody deactivates themselves.

use ecrf_core::{Action, Role};
use ecrf_log::{AuthorKey, Body, ChangeKind, User, body};

use super::{Draft, Store};
use crate::error::StoreError;
use crate::keyring::{KdfParams, Keyring, new_author_key};

/// Checks that a user name is usable: 2–32 of a-z, 0-9, `.`, `_`, `-`.
pub(super) fn check_username(name: &str) -> Result<(), StoreError> {
    let ok = (2..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "user name {name:?}: use 2 to 32 lower-case letters, digits, '.', '_' or '-'"
        )))
    }
}

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Least zxcvbn score accepted (0–4; 3 = "safely unguessable": about 10^8 guesses or more,
/// each of which costs a whole Argon2id derivation against a stolen key file).
pub const MIN_PASSWORD_SCORE: u8 = 3;

/// Checks that a password may be set for `username`: at least [`MIN_PASSWORD_CHARS`]
/// characters and a zxcvbn score of at least [`MIN_PASSWORD_SCORE`] (the user name and the
/// trial's words count as known to a guesser). The error names the field and the rule, in
/// English and Chinese (the app shows it as it is).
pub fn check_password(password: &str, username: &str) -> Result<(), StoreError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(StoreError::Invalid(format!(
            "password: at least {MIN_PASSWORD_CHARS} characters are needed (this one has {n}) \
             / 密码：至少需要 {MIN_PASSWORD_CHARS} 个字符（当前 {n} 个）"
        )));
    }
    let known = [
        username,
        "ecrf",
        "early",
        "iabp",
        "early-iabp",
        "trial",
        "study",
    ];
    let estimate = zxcvbn::zxcvbn(password, &known);
    let score = u8::from(estimate.score());
    if score < MIN_PASSWORD_SCORE {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        return Err(StoreError::Invalid(format!(
            "password: too easy to guess{hint}: strength {score} of 4, at least \
             {MIN_PASSWORD_SCORE} is needed; use a longer phrase of unrelated words \
             / 密码：过于容易被猜到（强度 {score}/4，至少需要 {MIN_PASSWORD_SCORE}）；\
             请使用由几个无关词语组成的较长短语"
        )));
    }
    Ok(())
}

impl Store {
    /// Checks the logged-in user's password against their key slot.
    pub(crate) fn check_password(&self, password: &str) -> Result<(), StoreError> {
        self.keyring
            .unlock(&self.session.user, password)
            .map(|_| ())
    }

    /// Adds a user with a role and password (administrators only).
    pub fn add_user(
        &mut self,
        username: &str,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<(), StoreError> {
        self.require(Action::ManageUsers)?;
        self.require_local_users()?;
        check_username(username)?;
        check_password(password, username)?;
        if self.users()?.iter().any(|u| u.username == username) {
            return Err(StoreError::Invalid(format!(
                "user {username} already exists"
            )));
        }
        let author = new_author_key()?;
        let mut d = Draft::of(Body::UserAdded(body::UserAdded {
            name: name.to_string(),
            role,
            public_key: Some(author.public_hex()),
        }));
        d.item = Some(username.to_string());
        self.commit_with_slot(d, username, password, &author)
    }

    /// Commits `d` and writes `username`'s key slot for `password` inside the same write lock,
    /// from the key file as it is now, so a slot written meanwhile by another session or
    /// process is kept, not overwritten.
    fn commit_with_slot(
        &mut self,
        d: Draft,
        username: &str,
        password: &str,
        author: &AuthorKey,
    ) -> Result<(), StoreError> {
        let (path, key) = (self.path.clone(), self.key.clone());
        let (_, ring) = self.commit_with(|tx| {
            let mut ring = Keyring::load(&path)?;
            let kek = ring.set_user(username, password, &key, Some(author), KdfParams::CURRENT)?;
            crate::rekey::keep_slot_key(tx, Some(username), &kek)?;
            ring.save()?;
            Ok((vec![d], ring))
        })?;
        self.keyring = ring;
        Ok(())
    }

    /// Sets a new password for the logged-in user (also after opening with the recovery key).
    /// Recorded in the log; it ends a pending administrator reset.
    pub fn set_password(&mut self, password: &str) -> Result<(), StoreError> {
        let user = self.session.user.clone();
        check_password(password, &user)?;
        // The same signing key, rewrapped; a new one (its public key recorded) when this
        // session has none (opened with the recovery key, or a slot older than signing).
        let (author, fresh) = match &self.author {
            Some(a) => (a.clone(), false),
            None => (new_author_key()?, true),
        };
        let mut d = Draft::of(Body::PasswordChanged(body::KeyBody {
            public_key: fresh.then(|| author.public_hex()),
        }));
        d.item = Some(user.clone());
        if fresh {
            // The change registering the key is signed with it.
            self.author = Some(author.clone());
        }
        self.commit_with_slot(d, &user, password, &author)
    }

    /// An administrator sets a temporary password for another user, who must choose a new one
    /// before their next signature.
    pub fn reset_password(&mut self, username: &str, password: &str) -> Result<(), StoreError> {
        self.require(Action::ManageUsers)?;
        self.require_local_users()?;
        check_password(password, username)?;
        self.require_user(username)?;
        // A new signing key: nobody but its owner can unwrap the old one.
        let author = new_author_key()?;
        let mut d = Draft::of(Body::PasswordReset(body::KeyBody {
            public_key: Some(author.public_hex()),
        }));
        d.item = Some(username.to_string());
        self.commit_with_slot(d, username, password, &author)
    }

    /// Rewrites the logged-in user's key slot with [`KdfParams::CURRENT`] when it was written
    /// with a weaker cost (called right after a successful login with the password just
    /// checked). Inside the write lock, from the key file as it is now, and only if the slot is
    /// still the one this login opened (a password changed meanwhile elsewhere is kept).
    pub(crate) fn strengthen_slot(&mut self, password: &str) -> Result<(), StoreError> {
        let user = self.session.user.clone();
        if !self.keyring.is_weaker_than_current(&user) {
            return Ok(());
        }
        let (path, key, opened) = (self.path.clone(), self.key.clone(), self.keyring.clone());
        let author = self.author.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut ring = Keyring::load(&path)?;
        if ring.same_slot(&opened, &user) {
            let kek = ring.set_user(&user, password, &key, author.as_ref(), KdfParams::CURRENT)?;
            crate::rekey::keep_slot_key(&tx, Some(&user), &kek)?;
            ring.save()?;
        }
        tx.commit()?;
        self.keyring = ring;
        Ok(())
    }

    /// Changes a user's role (administrators only).
    pub fn change_role(&mut self, username: &str, role: Role) -> Result<(), StoreError> {
        self.require(Action::ManageUsers)?;
        self.require_local_users()?;
        self.require_user(username)?;
        let mut d = Draft::new(ChangeKind::UserRole);
        d.item = Some(username.to_string());
        d.new_value = Some(role.as_str().to_string());
        self.commit_changes(vec![d])?;
        Ok(())
    }

    /// Deactivates a user: they can no longer log in; their name stays on every record and is
    /// never given to anyone else.
    pub fn deactivate_user(&mut self, username: &str) -> Result<(), StoreError> {
        self.require(Action::ManageUsers)?;
        self.require_local_users()?;
        self.require_user(username)?;
        if username == self.session.user {
            return Err(StoreError::Invalid("you cannot deactivate yourself".into()));
        }
        let mut d = Draft::new(ChangeKind::UserDeactivated);
        d.item = Some(username.to_string());
        self.commit_changes(vec![d])?;
        Ok(())
    }

    /// Users are created and changed on the server once the laptop is enrolled with it.
    fn require_local_users(&self) -> Result<(), StoreError> {
        if self.sync_setting("server")?.is_some() {
            return Err(StoreError::Invalid(
                "this laptop is enrolled with the trial's server: users are created and changed \
                 there (ecrf server user …) and reach this laptop at its next sync \
                 / 本机已登记到试验服务器：用户在服务器上创建和更改，下次同步时到达本机"
                    .into(),
            ));
        }
        Ok(())
    }

    fn require_user(&self, username: &str) -> Result<(), StoreError> {
        if self.users()?.iter().any(|u| u.username == username) {
            Ok(())
        } else {
            Err(StoreError::UnknownUser(username.to_string()))
        }
    }

    /// The active users of this store with the public keys their changes here are signed with
    /// (registered by this device's own user changes): what enrolment registers on the server.
    pub fn users_with_keys(&self) -> Result<Vec<(User, Vec<String>)>, StoreError> {
        let mut keys = ecrf_log::KeyList::default();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM change_log WHERE device = ?1 AND kind IN ('user.add', \
             'user.password_reset', 'user.password_change') ORDER BY seq",
            crate::log::COLUMNS
        ))?;
        let mut rows = stmt.query([&self.device])?;
        while let Some(r) = rows.next()? {
            keys.learn(&crate::log::from_row(r)?);
        }
        Ok(self
            .users()?
            .into_iter()
            .filter(|u| u.active)
            .map(|u| {
                let k = keys.keys_of(&u.username);
                (u, k)
            })
            .collect())
    }

    /// Users of the store.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT username, name, role, active FROM users ORDER BY username")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (username, name, role, active) = row?;
            out.push(User {
                username,
                name,
                role: role.parse().map_err(StoreError::Invalid)?,
                active,
            });
        }
        Ok(out)
    }
}
