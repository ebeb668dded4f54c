//! Sync from the desktop: enrolment, what the Sync page and the header badge show (server,
//! online or not, last sync, changes waiting to be sent, conflicts) and one sync with progress.
//! Thin over `ecrf_sync`, which owns the order of a sync and why it may be cut anywhere.
//! Invariant: the online check never holds the store (see [`App::sync_client`]).

use ecrf_core::Action;
use ecrf_store::{Randomization, Store, StoreError};
use ecrf_sync::{Client, SyncError};

use crate::dto::{
    ConflictDto, ConflictValueDto, ErrorCode, SyncDone, SyncProgressDto, SyncStatusDto,
};
use crate::{App, AppError, AppResult, err, shown_value};

impl From<SyncError> for AppError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Store(s) => match s.downcast::<ecrf_store::StoreError>() {
                Ok(s) => (*s).into(),
                Err(other) => err(ErrorCode::Invalid, other.to_string()),
            },
            SyncError::Offline(_) | SyncError::Server { .. } => err(
                ErrorCode::Offline,
                format!(
                    "{e}. Nothing is lost: the changes stay on this laptop and go at the next sync."
                ),
            ),
            SyncError::NotEnrolled => err(
                ErrorCode::Invalid,
                "this laptop is not enrolled with a server yet: an administrator enrols it on the Sync page with a one-time code",
            ),
            other => err(ErrorCode::Invalid, other.to_string()),
        }
    }
}

/// Opens the store as `user`: with their key slot here, or, when this enrolled laptop has
/// none for them, by a first login online (the server checks the password and gives what
/// opens the store and their signing key), followed by a sync that brings their account.
/// The CLI and the desktop both log in through this.
pub fn open_or_first_login(
    path: &std::path::Path,
    study: std::sync::Arc<ecrf_core::Study>,
    user: &str,
    password: &str,
) -> Result<Store, SyncError> {
    let ring = ecrf_store::Keyring::load(path).map_err(SyncError::store)?;
    if ring.has_user(user) || ring.device_slot().is_none() {
        return Store::open(path, study, user, password).map_err(SyncError::store);
    }
    let mut store = Store::first_login(path, study, user, password, |slot| {
        ecrf_sync::first_login_request(
            &slot.server,
            slot.ca_pem.as_deref(),
            (&slot.device, &slot.site),
            user,
            password,
        )
    })
    .map_err(SyncError::store)?;
    let client = ecrf_sync::client::client_of(&store)?;
    ecrf_sync::sync(&mut store, &client, &mut |_| {})?;
    Ok(store)
}

/// Creates a user of this enrolled laptop's site on the server (an administrator, online):
/// the password rule is checked here, the credentials made from it (a new signing key, its
/// escrow and the password's verifier: the server never sees the password), the request
/// signed with the administrator's key; then a sync brings the new user to this laptop.
pub fn add_user_online(
    store: &mut Store,
    client: &Client,
    (username, name, role): (&str, &str, ecrf_core::Role),
    password: &str,
) -> Result<(), SyncError> {
    let session = store.session().clone();
    if !session.role.may(Action::ManageUsers) {
        return Err(SyncError::store(StoreError::NotAllowed {
            user: session.user,
            role: session.role.to_string(),
            action: Action::ManageUsers.to_string(),
        }));
    }
    ecrf_store::check_password(password, username).map_err(SyncError::store)?;
    let key = ecrf_store::keyring::new_author_key().map_err(SyncError::store)?;
    let identity =
        |e: ecrf_identity::IdentityError| SyncError::store(StoreError::Invalid(e.to_string()));
    let mut req = ecrf_sync::wire::UserRequest {
        username: username.to_string(),
        name: name.to_string(),
        role: role.as_str().to_string(),
        verifier: ecrf_identity::verifier(password).map_err(identity)?,
        escrow: ecrf_identity::escrow(password, &key).map_err(identity)?,
        public_key: key.public_hex(),
        administrator: session.user,
        utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        signature: String::new(),
    };
    let message = req.message(store.device_id(), store.site());
    req.signature = store.sign_request(&message).map_err(SyncError::store)?;
    let site = store.site().to_string();
    client.add_user(&site, &req)?;
    ecrf_sync::sync(store, client, &mut |_| {})?;
    Ok(())
}

/// Receives `blocks` whole blocks of the site's allocation list from the server, sealed to this
/// device's key, and loads them as sealed envelopes (an administrator's session, as for a lease
/// file). The request is signed with the administrator's key; the server leases only to a user
/// its registry holds as an active administrator of the site. Returns how many.
pub fn fetch_lease(store: &mut Store, client: &Client, blocks: u32) -> Result<usize, SyncError> {
    let role = store.session().role;
    if !role.may(Action::LoadLease) {
        return Err(SyncError::store(StoreError::NotAllowed {
            user: store.session().user.clone(),
            role: role.to_string(),
            action: Action::LoadLease.to_string(),
        }));
    }
    ecrf_sync::sync(store, client, &mut |_| {})?;
    let site = store.site().to_string();
    let user = store.session().user.clone();
    let utc = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let message =
        ecrf_sync::wire::LeaseRequest::message(store.device_id(), &site, blocks, &user, &utc);
    let signature = store.sign_request(&message).map_err(SyncError::store)?;
    let reply = client.lease(
        &site,
        &ecrf_sync::wire::LeaseRequest {
            blocks,
            administrator: user,
            utc,
            signature,
        },
    )?;
    store
        .load_sealed_lease(&reply.lease)
        .map_err(SyncError::store)
}

/// Randomizes a subject. Online (a client given and the server answering): the server takes
/// the next slot of the site's list in one transaction and the store records it. Offline (no
/// answer) or when the server has no slot for the site: the next sealed envelope leased to
/// this device. Refusals (not eligible, no consent, already randomized) are decided by the
/// store before the server is asked, so they never use a slot. Returns the randomization and
/// whether it was online.
pub fn randomize(
    store: &mut Store,
    client: Option<&Client>,
    subject: &str,
) -> Result<(Randomization, bool), SyncError> {
    store
        .check_randomizable(subject)
        .map_err(SyncError::store)?;
    if let Some(client) = client {
        let site = store.site().to_string();
        match client.take_slot(&site, subject) {
            Ok(slot) => {
                return Ok((
                    store
                        .randomize_with_server_slot(subject, &slot)
                        .map_err(SyncError::store)?,
                    true,
                ));
            }
            Err(SyncError::Offline(_)) | Err(SyncError::Refused { status: 409, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((store.randomize(subject).map_err(SyncError::store)?, false))
}

impl App {
    /// Where this laptop stands with the server (no network: `online` is checked apart).
    pub fn sync_status(&self) -> AppResult<SyncStatusDto> {
        let store = self.store()?;
        let state = store.sync_state()?;
        let server = store.sync_setting(ecrf_sync::client::setting::SERVER)?;
        // Counted in the store: reading the changes themselves to count them took seconds and
        // hundreds of MB on a large site that never synced (600 subjects: 850,000 changes).
        let waiting =
            u32::try_from(store.own_change_count_after(state.pushed)?).unwrap_or(u32::MAX);
        let conflicts = store
            .conflicts()?
            .into_iter()
            .map(|c| ConflictDto {
                subject: c.subject,
                form: c.form,
                item: c.item,
                values: c
                    .values
                    .into_iter()
                    .map(|v| ConflictValueDto {
                        value: shown_value(&v.value),
                        user: v.user,
                        device: v.device,
                        utc: v.utc,
                    })
                    .collect(),
            })
            .collect();
        let ca_file = store
            .sync_setting(ecrf_sync::client::setting::CA_FILE)?
            .filter(|f| !f.is_empty());
        Ok(SyncStatusDto {
            enrolled: server.is_some(),
            server,
            device: store.device_id().to_string(),
            ca_file,
            last_success: state.last_success,
            waiting,
            conflicts,
            may_enrol: store.session().role.may(Action::ManageDevices),
            may_resolve: store.session().role.may(Action::ChangeData),
            update: store
                .sync_setting(ecrf_sync::client::setting::SERVER_VERSION)?
                .filter(|v| {
                    use ecrf_core::study::versions::{APP_VERSION, version_key};
                    version_key(v) > version_key(APP_VERSION)
                }),
        })
    }

    /// Resolves an item in conflict: `value` (typed as on the form; empty clears the item)
    /// replaces every value kept, with the reason, and reaches the other laptops on sync.
    pub fn resolve_conflict(
        &mut self,
        subject: &str,
        form: &str,
        item: &str,
        value: &str,
        reason: &str,
    ) -> AppResult<SyncStatusDto> {
        self.store_mut()?
            .resolve_conflict(subject, form, item, value, reason)?;
        self.sync_status()
    }

    /// The client to reach the server with, if enrolled: the caller checks the connection
    /// after letting go of the app, so a slow network never holds up a save.
    pub fn sync_client(&self) -> AppResult<Option<Client>> {
        match ecrf_sync::client::client_of(self.store()?) {
            Ok(c) => Ok(Some(c)),
            Err(SyncError::NotEnrolled) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Enrols this laptop with the server at `url` using a one-time code made for this
    /// laptop's device id (administrators). `ca_file`: the site's own CA certificate (PEM), when
    /// the server's certificate is not from a public CA; kept as the site CA setting.
    pub fn enrol(
        &mut self,
        url: &str,
        code: &str,
        ca_file: Option<&str>,
    ) -> AppResult<SyncStatusDto> {
        let store = self.store()?;
        if !store.session().role.may(Action::ManageDevices) {
            return Err(err(
                ErrorCode::NotAllowed,
                "only an administrator enrols this laptop with the server",
            ));
        }
        let url = url.trim();
        // The address rule (https://, or http:// to this computer only) is the sync client's.
        ecrf_sync::guard::check_server_url(url)?;
        if code.trim().is_empty() {
            return Err(err(
                ErrorCode::Invalid,
                "enrolment code: required (the code the coordinating centre gave for this laptop)",
            ));
        }
        let ca_file = ca_file.map(str::trim).filter(|f| !f.is_empty());
        let pem = ca_file
            .map(|f| ecrf_sync::client::read_ca_file(std::path::Path::new(f)))
            .transpose()?;
        ecrf_sync::enrol(store, url, code, pem.as_deref())?;
        if let (Some(f), Some(pem)) = (ca_file, &pem) {
            ecrf_sync::client::set_site_ca(store, Some((std::path::Path::new(f), pem.as_slice())))?;
        }
        self.sync_status()
    }

    /// Sets the site CA certificate (a PEM file) the sync trusts for this laptop's server, or
    /// clears it with an empty path (public CAs again). Administrators.
    pub fn set_site_ca(&mut self, ca_file: &str) -> AppResult<SyncStatusDto> {
        let store = self.store()?;
        if !store.session().role.may(Action::ManageDevices) {
            return Err(err(
                ErrorCode::NotAllowed,
                "only an administrator sets the site CA certificate",
            ));
        }
        let f = ca_file.trim();
        if f.is_empty() {
            ecrf_sync::client::set_site_ca(store, None)?;
        } else {
            let path = std::path::Path::new(f);
            let pem = ecrf_sync::client::read_ca_file(path)?;
            ecrf_sync::client::set_site_ca(store, Some((path, pem.as_slice())))?;
        }
        self.sync_status()
    }

    /// One sync: sends what the server lacks, then receives what this laptop lacks, telling
    /// `progress` after every page.
    pub fn sync_now(&mut self, progress: &mut dyn FnMut(SyncProgressDto)) -> AppResult<SyncDone> {
        let client = self.sync_client()?.ok_or(SyncError::NotEnrolled)?;
        let store = self.store_mut()?;
        let report = ecrf_sync::sync(store, &client, &mut |p| {
            progress(SyncProgressDto {
                sent: p.pushed as u32,
                to_send: p.to_push as u32,
                received: p.pulled as u32,
            })
        })?;
        Ok(SyncDone {
            sent: report.pushed as u32,
            received: report.pulled as u32,
            conflicts: report.conflicts as u32,
            flags: report.flags,
            held: report.held as u32,
            finished: report.finished,
        })
    }
}
