//! Form instances: which copy of a form a value belongs to.
//!
//! A once-only form is named by its id (`BAS`); a repeating one by id and number (`DLY#3` is the
//! daily log of study day 3, `AE#2` the second adverse event). Invariant: a `FormKey` that exists
//! names a form of the study and a repeat number the form allows.

use std::fmt;

use crate::study::{Repeat, Study};

/// A form instance of one subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FormKey {
    /// Form id.
    pub form: String,
    /// Repeat number: none for once-only forms, the study day for daily forms, from 1 for events.
    pub repeat: Option<u32>,
}

impl fmt::Display for FormKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.repeat {
            None => write!(f, "{}", self.form),
            Some(n) => write!(f, "{}#{n}", self.form),
        }
    }
}

impl FormKey {
    /// Reads `FORM` or `FORM#N` against the study: the form must exist and allow that number.
    pub fn parse(study: &Study, text: &str) -> Result<FormKey, String> {
        let (form_id, repeat) = match text.split_once('#') {
            Some((f, n)) => {
                let n: u32 = n
                    .parse()
                    .map_err(|_| format!("{text}: the repeat after # must be a number"))?;
                (f, Some(n))
            }
            None => (text, None),
        };
        let form = study
            .form(form_id)
            .ok_or_else(|| format!("{text}: there is no form {form_id} in this study"))?;
        let repeat = match (form.repeat, repeat) {
            (Repeat::Once, None) => None,
            (Repeat::Once, Some(_)) => {
                return Err(format!(
                    "{text}: form {form_id} is filled in once; write it without #"
                ));
            }
            (_, None) => {
                return Err(format!(
                    "{text}: form {form_id} repeats; write which one, like {form_id}#1"
                ));
            }
            (Repeat::ByDay, Some(n)) if n <= form.max_repeats => Some(n),
            (Repeat::ByEvent, Some(n)) if (1..=form.max_repeats).contains(&n) => Some(n),
            (Repeat::ByDay, Some(_)) => {
                return Err(format!(
                    "{text}: study days run from 0 to {}",
                    form.max_repeats
                ));
            }
            (Repeat::ByEvent, Some(_)) => {
                return Err(format!(
                    "{text}: events are numbered 1 to {}",
                    form.max_repeats
                ));
            }
        };
        Ok(FormKey {
            form: form_id.to_string(),
            repeat,
        })
    }
}
