//! Sealed envelopes from the desktop: how many this laptop holds (counts only) and, for an
//! administrator, receiving a lease of whole blocks from the server, sealed to this laptop.
//! Thin over `ecrf_store` (which alone opens an envelope) and [`crate::sync::fetch_lease`].

use ecrf_core::Action;
use ecrf_sync::SyncError;

use crate::dto::{EnvelopeCountDto, EnvelopesDto, ErrorCode};
use crate::{App, AppResult, err};

impl App {
    /// Sealed and opened envelopes per stratum, and whether this session may load a lease.
    pub fn envelopes(&self) -> AppResult<EnvelopesDto> {
        let store = self.store()?;
        let enrolled = store
            .sync_setting(ecrf_sync::client::setting::SERVER)?
            .is_some();
        let strata = store
            .envelope_counts()?
            .into_iter()
            .map(|c| EnvelopeCountDto {
                stratum: c.stratum,
                sealed: c.unopened.clamp(0, i64::from(u32::MAX)) as u32,
                opened: c.opened.clamp(0, i64::from(u32::MAX)) as u32,
            })
            .collect();
        Ok(EnvelopesDto {
            may_load: store.session().role.may(Action::LoadLease),
            enrolled,
            strata,
        })
    }

    /// Receives `blocks` whole blocks of the site's list from the server, sealed to this
    /// laptop, as envelopes (administrators; syncs first). Returns the counts after.
    pub fn load_lease(&mut self, blocks: u32) -> AppResult<EnvelopesDto> {
        if !(1..=ecrf_sync::wire::MAX_LEASE_BLOCKS).contains(&blocks) {
            return Err(err(
                ErrorCode::Invalid,
                format!(
                    "blocks: give 1 to {} whole blocks",
                    ecrf_sync::wire::MAX_LEASE_BLOCKS
                ),
            ));
        }
        let client = self.sync_client()?.ok_or(SyncError::NotEnrolled)?;
        crate::sync::fetch_lease(self.store_mut()?, &client, blocks)?;
        self.envelopes()
    }
}
