//! `ecrf-core`: the trial as data and its rules.
//!
//! - [`study`]: the study definition (forms, items, code lists, rules) and its loader;
//! - [`value`]: item values, exact decimals and missing-data codes;
//! - [`eligibility`]: eligible / not eligible with reasons from SCR, and the consent record;
//! - [`randomization`]: when a patient may be randomized (the window after ECMO start, no LV
//!   unloading started yet);
//! - [`check`]: edit checks on a save (types, ranges, rules, completeness);
//! - [`derive`]: values computed from a form's own items (BMI, VIS, pulse pressure);
//! - [`outcome`]: a subject's derived outcomes across forms (6-hour window, deviation, crossover,
//!   days on devices, lengths of stay, weaning, the primary endpoint) and protocol flags;
//! - [`instance`]: which form instance (`DLY#3`) a save is for;
//! - [`role`]: roles and what each may do (the permission table);
//! - [`signature`]: electronic signatures: what they cover, their binding hash, when allowed;
//! - [`query`]: a data query's life cycle (raise, answer, close, reopen) and who may move it;
//! - [`lock`]: locks on a form, a casebook or a site;
//! - [`schedule`]: day 0, due dates and the status of each form instance;
//! - [`trial`]: this trial's definition, embedded from `study/` at build time;
//! - [`sample`]: sample answers (an eligible screening) for the demo, benchmarks and tests.
//!
//! Architecture invariant: nothing here does I/O. The clock, other forms' values and files are
//! passed in, so every rule can be tested on its own.
#![deny(missing_docs)]

pub mod check;
pub mod derive;
pub mod eligibility;
pub mod instance;
pub mod lab;
pub mod lang;
pub mod lock;
pub mod outcome;
pub mod query;
pub mod randomization;
pub mod role;
pub mod sample;
pub mod schedule;
pub mod signature;
pub mod study;
pub mod trial;
pub mod value;

pub use check::{Finding, SaveCheck};
pub use instance::FormKey;
pub use lang::Lang;
pub use role::{Action, Role};
pub use study::{FormDef, ItemDef, ItemType, Severity, Study, Text};
pub use value::{Decimal, MissingCode, Value};
