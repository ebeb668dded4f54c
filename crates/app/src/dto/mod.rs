//! Types exchanged with the UI. The TypeScript declarations in `ui/src/bindings.ts` are
//! generated from these (see [`crate::bindings`]); a test fails when they are out of date.
//! Invariant: no `i64` crosses the boundary (JavaScript numbers), and every enum is tagged.
//! One file per page or concern; everything is re-exported here, so `crate::dto::X` names every type.

mod error;
mod files;
mod form;
mod lab;
mod oversight;
mod screening;
mod session;
mod study;
mod subject;
mod sync;

pub use error::*;
pub use files::*;
pub use form::*;
pub use lab::*;
pub use oversight::*;
pub use screening::*;
pub use session::*;
pub use study::*;
pub use subject::*;
pub use sync::*;
