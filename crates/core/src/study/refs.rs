//! The checks that need the whole study at once: every condition (`ask_when`, a rule's `when`)
//! names a coded item of its form and answers that item has; every rule item resolves (in its
//! form, `FORM.ITEM` in a once-only form, or a `SUBJECT.*` value) with comparable types; rule
//! ids are unique across the study.
//!
//! Owns no state: problems are added to the loader's list, in form order then item and rule
//! order, so the report reads in file order. Invariant: run after every form is loaded (by
//! [`Study::from_sources`] and [`Study::with_form_file`] alike), so a definition changed one
//! file at a time is checked exactly like a whole one.

use std::collections::BTreeSet;

use super::load::Problems;
use super::{Condition, ItemRef, ItemType, Repeat, RuleKind, Study};

/// Checks what needs the whole study: rule and condition references across items and forms.
pub(super) fn check_references(study: &Study, p: &mut Problems) {
    let mut rule_ids = BTreeSet::new();
    for form in &study.forms {
        let file = form.file.as_str();
        // `other_forms`: a rule's `when` may name `FORM.ITEM` of a once-only form; an item's
        // `ask_when` only its own form (the form page decides it from what is on screen).
        let check_condition = |p: &mut Problems, place: &str, c: &Condition, other_forms: bool| {
            let (target, item) = match c.item.split_once('.') {
                Some((fid, iid)) if other_forms => match study.form(fid) {
                    Some(f) if f.repeat == Repeat::Once => (f, iid),
                    _ => {
                        p.add(
                            file,
                            Some(place),
                            format!(
                                "its condition names {}, but there is no once-only form {fid}",
                                c.item
                            ),
                        );
                        return;
                    }
                },
                _ => (form, c.item.as_str()),
            };
            match target.item(item) {
                None => p.add(
                    file,
                    Some(place),
                    format!(
                        "its condition names item {}, which form {} does not have",
                        c.item, target.id
                    ),
                ),
                Some(ci) if !ci.item_type.is_coded() => p.add(
                    file,
                    Some(place),
                    format!("its condition item {} is not a coded item", c.item),
                ),
                Some(ci) => {
                    let codes = study.codes_for(ci);
                    for code in &c.is {
                        if !codes.iter().any(|k| &k.code == code) {
                            p.add(
                                file,
                                Some(place),
                                format!("its condition code {code} is not an answer of {}", c.item),
                            );
                        }
                    }
                }
            }
        };
        for item in &form.items {
            if let Some(c) = &item.ask_when {
                check_condition(p, &format!("item {}", item.id), c, false);
            }
        }
        for rule in &form.rules {
            let place = format!("rule {}", rule.id);
            if !rule_ids.insert(rule.id.clone()) {
                p.add(
                    file,
                    Some(&place),
                    "duplicate rule id (rule ids are unique in the study)",
                );
            }
            if let Some(w) = &rule.when {
                check_condition(p, &place, w, true);
            }
            let resolve = |p: &mut Problems, r: &ItemRef| -> Option<ItemType> {
                let target = match &r.form {
                    None => form,
                    Some(fid) if fid == crate::outcome::SUBJECT => {
                        return match crate::outcome::subject_item_type(&r.item) {
                            Some(t) => Some(t),
                            None => {
                                p.add(
                                    file,
                                    Some(&place),
                                    format!(
                                        "refers to unknown subject value {r} ({})",
                                        crate::outcome::SUBJECT_ITEMS.join(", ")
                                    ),
                                );
                                None
                            }
                        };
                    }
                    Some(fid) => {
                        match study.form(fid) {
                            Some(f) if f.repeat == Repeat::Once => f,
                            Some(_) => {
                                p.add(file, Some(&place), format!("refers to {r}, but form {fid} repeats, so which one is unclear"));
                                return None;
                            }
                            None => {
                                p.add(
                                    file,
                                    Some(&place),
                                    format!("refers to {r}, but there is no form {fid}"),
                                );
                                return None;
                            }
                        }
                    }
                };
                match target.item(&r.item) {
                    Some(i) => Some(i.item_type),
                    None => {
                        p.add(file, Some(&place), format!("refers to unknown item {r}"));
                        None
                    }
                }
            };
            match &rule.kind {
                RuleKind::Compare { left, right, .. } => {
                    if let (Some(a), Some(b)) = (resolve(p, left), resolve(p, right)) {
                        let comparable =
                            (a.is_number() && b.is_number()) || (a.is_time() && b.is_time());
                        if !comparable {
                            p.add(file, Some(&place), format!("cannot compare {left} with {right}: compare numbers with numbers and dates with dates"));
                        }
                    }
                }
                RuleKind::NotFuture { item } => {
                    let r = ItemRef {
                        form: None,
                        item: item.clone(),
                    };
                    if let Some(t) = resolve(p, &r)
                        && !t.is_time()
                    {
                        p.add(
                            file,
                            Some(&place),
                            format!("{item} is not a date or date-time"),
                        );
                    }
                }
                RuleKind::RequiredIf { item, when } => {
                    let r = ItemRef {
                        form: None,
                        item: item.clone(),
                    };
                    resolve(p, &r);
                    check_condition(p, &place, when, false);
                }
            }
        }
    }
}
