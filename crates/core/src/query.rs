//! Data queries: a question on one item, raised by a monitor or data manager (or automatically
//! when a soft-range warning is confirmed without a comment), answered by site staff, closed or
//! reopened. Owns the query's life cycle and who may move it; the store records each step as a
//! change in the log (who, when, text).
//!
//! Invariant: a query moves only along [`QueryState::after`]; every other step is refused with the
//! reason, so the same rule holds in the app, the CLI and the server.

use std::fmt;

use crate::role::{Action, Role};

/// Where a query stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum QueryState {
    /// Raised (or reopened), waiting for the site.
    Open,
    /// The site answered; waiting for the monitor or data manager.
    Answered,
    /// Closed.
    Closed,
}

/// A step in a query's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum QueryStep {
    /// Raise a new query.
    Raise,
    /// Answer it (site staff).
    Answer,
    /// Close it.
    Close,
    /// Reopen a closed or answered query.
    Reopen,
}

impl fmt::Display for QueryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryState::Open => "open",
            QueryState::Answered => "answered",
            QueryState::Closed => "closed",
        })
    }
}

impl fmt::Display for QueryStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryStep::Raise => "raise",
            QueryStep::Answer => "answer",
            QueryStep::Close => "close",
            QueryStep::Reopen => "reopen",
        })
    }
}

/// Why a query step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The role may not take this step.
    #[error("a {role} may not {step} a query")]
    NotAllowed {
        /// Who tried.
        role: Role,
        /// What.
        step: QueryStep,
    },
    /// The step does not follow from where the query stands.
    #[error("cannot {step} a query that is {state}")]
    WrongState {
        /// The step tried.
        step: QueryStep,
        /// Where the query stands (none: it does not exist yet).
        state: QueryState,
    },
    /// Every step carries a text: the question, the answer, or why it is closed or reopened.
    #[error("a query {step} needs a text")]
    NoText {
        /// The step tried.
        step: QueryStep,
    },
}

impl QueryStep {
    /// The permission this step needs.
    pub fn action(self) -> Action {
        match self {
            QueryStep::Raise => Action::RaiseQuery,
            QueryStep::Answer => Action::AnswerQuery,
            QueryStep::Close | QueryStep::Reopen => Action::CloseQuery,
        }
    }
}

impl QueryState {
    /// The state after `step` taken by `role` with `text` on a query in `current` (none for a new
    /// query), or why not.
    pub fn after(
        current: Option<QueryState>,
        step: QueryStep,
        role: Role,
        text: &str,
    ) -> Result<QueryState, QueryError> {
        if !role.may(step.action()) {
            return Err(QueryError::NotAllowed { role, step });
        }
        if text.trim().is_empty() {
            return Err(QueryError::NoText { step });
        }
        match (current, step) {
            (None, QueryStep::Raise) => Ok(QueryState::Open),
            (Some(QueryState::Open), QueryStep::Answer) => Ok(QueryState::Answered),
            (Some(QueryState::Open | QueryState::Answered), QueryStep::Close) => {
                Ok(QueryState::Closed)
            }
            (Some(QueryState::Answered | QueryState::Closed), QueryStep::Reopen) => {
                Ok(QueryState::Open)
            }
            (Some(state), step) => Err(QueryError::WrongState { step, state }),
            // Only raising makes a query exist; the caller reports an unknown query id.
            (None, step) => Err(QueryError::WrongState {
                step,
                state: QueryState::Closed,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use QueryState::*;
    use QueryStep::*;

    #[test]
    fn a_query_is_raised_answered_closed_and_reopened_by_the_right_roles() {
        let s = QueryState::after(None, Raise, Role::Monitor, "MAP 30 on day 2?").unwrap();
        assert_eq!(s, Open);
        let s = QueryState::after(Some(s), Answer, Role::Nurse, "typo, corrected").unwrap();
        assert_eq!(s, Answered);
        let s = QueryState::after(Some(s), Close, Role::Monitor, "ok").unwrap();
        assert_eq!(s, Closed);
        let s = QueryState::after(Some(s), Reopen, Role::DataManager, "still 30").unwrap();
        assert_eq!(s, Open);
    }

    #[test]
    fn wrong_roles_states_and_empty_texts_are_refused_with_the_reason() {
        assert_eq!(
            QueryState::after(None, Raise, Role::Nurse, "x")
                .unwrap_err()
                .to_string(),
            "a nurse may not raise a query"
        );
        assert_eq!(
            QueryState::after(Some(Open), Answer, Role::Monitor, "x")
                .unwrap_err()
                .to_string(),
            "a monitor may not answer a query"
        );
        assert_eq!(
            QueryState::after(Some(Closed), Answer, Role::Nurse, "x")
                .unwrap_err()
                .to_string(),
            "cannot answer a query that is closed"
        );
        assert_eq!(
            QueryState::after(Some(Open), Reopen, Role::Monitor, "x")
                .unwrap_err()
                .to_string(),
            "cannot reopen a query that is open"
        );
        assert_eq!(
            QueryState::after(Some(Open), Close, Role::Monitor, "  ")
                .unwrap_err()
                .to_string(),
            "a query close needs a text"
        );
        assert!(QueryState::after(Some(Open), Close, Role::Admin, "x").is_err());
    }
}
