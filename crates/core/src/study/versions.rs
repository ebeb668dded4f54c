//! Definition versions: the base version embedded in the app, the versions approved later
//! (protocol amendments, received as data at sync), and which one is in force at a site on a
//! day.
//!
//! Invariants: a version never changes once approved (the first text received for it is the
//! one used); a site uses the base version until its first activation, then the activation
//! with the latest `from` on or before the day; a version this app cannot load (newer rules,
//! or `requires_app` above this app's version) is never replaced by another: whoever asks for
//! it gets [`VersionError::TooOld`], so nothing is entered under the wrong rules.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::NaiveDate;

use super::{ItemDef, Study};

/// This app's version (the workspace's), compared with a definition's `requires_app`.
pub const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why a version cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The version was never received.
    #[error("study definition version {0} has not reached this laptop: synchronize first")]
    Unknown(String),
    /// The version was received but this app cannot use it.
    #[error(
        "this app ({app}) is too old for study definition {version}: {why}. Install the \
         update from your IT department; until then data are not entered under the wrong rules"
    )]
    TooOld {
        /// The app's version.
        app: String,
        /// The definition version.
        version: String,
        /// Why, in words.
        why: String,
    },
}

/// One activation: `site` uses `version` from the local date `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The site.
    pub site: String,
    /// The version.
    pub version: String,
    /// First day in force.
    pub from: NaiveDate,
}

/// Every definition version a replica knows, and the sites' activations.
#[derive(Debug, Clone)]
pub struct Definitions {
    base: Arc<Study>,
    published: BTreeMap<String, Result<Arc<Study>, String>>,
    activations: Vec<Activation>,
}

/// Orders `1.10.0` after `1.9.0`; text that is not numbers sorts by its text.
pub fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split('.')
        .map(|p| (p.parse::<u64>().unwrap_or(u64::MAX), p.to_string()))
        .collect()
}

impl Definitions {
    /// Only the base version.
    pub fn new(base: Arc<Study>) -> Self {
        Definitions {
            base,
            published: BTreeMap::new(),
            activations: Vec::new(),
        }
    }

    /// The base version (the one embedded in the app).
    pub fn base(&self) -> &Arc<Study> {
        &self.base
    }

    /// Adds a received version from its files. A version already known is kept as it is; one
    /// this app cannot load is remembered with the reason (asking for it says so).
    pub fn add(&mut self, version: &str, files: &[(String, String)]) {
        if version == self.base.version || self.published.contains_key(version) {
            return;
        }
        let loaded = load_files(files).and_then(|s| {
            if s.version != version {
                return Err(format!(
                    "its study.toml says version {}, not {version}",
                    s.version
                ));
            }
            Ok(Arc::new(s))
        });
        self.published.insert(version.to_string(), loaded);
    }

    /// Records an activation; a later one for the same site and day replaces it.
    pub fn activate(&mut self, a: Activation) {
        self.activations
            .retain(|o| !(o.site == a.site && o.from == a.from));
        self.activations.push(a);
    }

    /// The version in force at `site` on `day` (its name; it may be unusable here).
    pub fn in_force(&self, site: &str, day: NaiveDate) -> String {
        self.activations
            .iter()
            .filter(|a| a.site == site && a.from <= day)
            .max_by_key(|a| a.from)
            .map(|a| a.version.clone())
            .unwrap_or_else(|| self.base.version.clone())
    }

    /// The activations of `site`, earliest first.
    pub fn activations(&self, site: &str) -> Vec<&Activation> {
        let mut v: Vec<&Activation> = self.activations.iter().filter(|a| a.site == site).collect();
        v.sort_by_key(|a| a.from);
        v
    }

    /// A version's definition.
    pub fn version(&self, version: &str) -> Result<Arc<Study>, VersionError> {
        if version == self.base.version {
            return Ok(Arc::clone(&self.base));
        }
        match self.published.get(version) {
            None => Err(VersionError::Unknown(version.to_string())),
            Some(Err(why)) => Err(VersionError::TooOld {
                app: APP_VERSION.to_string(),
                version: version.to_string(),
                why: why.clone(),
            }),
            Some(Ok(s)) => Ok(Arc::clone(s)),
        }
    }

    /// The definition in force at `site` on `day`.
    pub fn in_force_study(&self, site: &str, day: NaiveDate) -> Result<Arc<Study>, VersionError> {
        self.version(&self.in_force(site, day))
    }

    /// One definition that reads data of every usable version, for exports and dictionaries:
    /// the newest version, with each form and item that only older versions have appended
    /// (an item removed later stays readable in the version that asked it); its `version` is
    /// the newest's. Columns follow the newest definition of each item.
    pub fn merged(&self) -> Study {
        let all = self.all();
        let mut merged = all
            .last()
            .map_or_else(|| (*self.base).clone(), |s| (**s).clone());
        for older in all.iter().rev().skip(1) {
            for f in &older.forms {
                match merged.forms.iter_mut().find(|m| m.id == f.id) {
                    None => merged.forms.push(f.clone()),
                    Some(m) => {
                        for i in &f.items {
                            if m.item(&i.id).is_none() {
                                m.items.push(i.clone());
                            }
                        }
                    }
                }
            }
            for (name, list) in &older.codelists {
                merged
                    .codelists
                    .entry(name.clone())
                    .or_insert_with(|| list.clone());
            }
        }
        merged
    }

    /// Every usable version, oldest first (the base first).
    pub fn all(&self) -> Vec<Arc<Study>> {
        let mut v: Vec<Arc<Study>> = std::iter::once(Arc::clone(&self.base))
            .chain(
                self.published
                    .values()
                    .filter_map(|s| s.as_ref().ok().cloned()),
            )
            .collect();
        v.sort_by_key(|s| version_key(&s.version));
        v
    }
}

/// Loads a definition from its files (`study.toml` and `forms/*.toml`), checking it as the
/// embedded one is checked, and that this app is recent enough for it.
pub fn load_files(files: &[(String, String)]) -> Result<Study, String> {
    let s = check_files(files)?;
    if let Some(need) = &s.requires_app
        && version_key(need) > version_key(APP_VERSION)
    {
        return Err(format!("it requires app {need} or newer"));
    }
    Ok(s)
}

/// Loads and checks a definition from its files, whatever app version it requires (the
/// server publishes definitions for apps newer than itself).
pub fn check_files(files: &[(String, String)]) -> Result<Study, String> {
    let study = files
        .iter()
        .find(|(p, _)| p.ends_with("study.toml"))
        .ok_or_else(|| "it has no study.toml".to_string())?;
    let forms: Vec<(&str, &str)> = files
        .iter()
        .filter(|(p, _)| !p.ends_with("study.toml"))
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    Study::from_sources((&study.0, &study.1), &forms).map_err(|e| e.to_string())
}

/// What an amendment changes, one line per difference, in English (forms and items added or
/// removed, and per item its type, unit, ranges, requirement, code list, condition, label).
pub fn diff(a: &Study, b: &Study) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut add = |form: &str, item: Option<&str>, what: String| {
        out.push(Difference {
            form: form.to_string(),
            item: item.map(str::to_string),
            what,
        })
    };
    for f in &a.forms {
        if b.form(&f.id).is_none() {
            add(&f.id, None, "form removed".into());
        }
    }
    for fb in &b.forms {
        let Some(fa) = a.form(&fb.id) else {
            add(&fb.id, None, format!("form added ({})", fb.name.en));
            continue;
        };
        for ia in &fa.items {
            if fb.item(&ia.id).is_none() {
                add(
                    &fb.id,
                    Some(&ia.id),
                    "item removed (its values stay readable)".into(),
                );
            }
        }
        for ib in &fb.items {
            match fa.item(&ib.id) {
                None => add(
                    &fb.id,
                    Some(&ib.id),
                    format!("item added: {}{}", ib.label.en, described(ib)),
                ),
                Some(ia) => {
                    for what in item_changes(ia, ib) {
                        add(&fb.id, Some(&ib.id), what);
                    }
                }
            }
        }
        if fa.rules.len() != fb.rules.len() {
            add(
                &fb.id,
                None,
                format!("rules: {} → {}", fa.rules.len(), fb.rules.len()),
            );
        }
    }
    if a.requires_app != b.requires_app {
        add(
            "study",
            None,
            format!(
                "requires app: {} → {}",
                opt(&a.requires_app),
                opt(&b.requires_app)
            ),
        );
    }
    out
}

/// One difference between two versions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    /// The form (or `study`).
    pub form: String,
    /// The item, when the difference is an item's.
    pub item: Option<String>,
    /// What changed, in words.
    pub what: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.item {
            Some(i) => write!(f, "{}.{}: {}", self.form, i, self.what),
            None => write!(f, "{}: {}", self.form, self.what),
        }
    }
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "none".to_string(), T::to_string)
}

fn described(i: &ItemDef) -> String {
    let mut s = format!(" ({:?}", i.item_type).to_lowercase();
    if let Some(u) = &i.unit {
        s.push_str(&format!(", {u}"));
    }
    if let Some(r) = &i.hard {
        s.push_str(&format!(", range {r}"));
    }
    if i.required {
        s.push_str(", required");
    }
    s.push(')');
    s
}

fn item_changes(a: &ItemDef, b: &ItemDef) -> Vec<String> {
    let mut v = Vec::new();
    let mut cmp = |name: &str, x: String, y: String| {
        if x != y {
            v.push(format!("{name}: {x} → {y}"));
        }
    };
    cmp(
        "type",
        format!("{:?}", a.item_type).to_lowercase(),
        format!("{:?}", b.item_type).to_lowercase(),
    );
    cmp("unit", opt(&a.unit), opt(&b.unit));
    cmp("hard range", opt(&a.hard), opt(&b.hard));
    cmp("soft range", opt(&a.soft), opt(&b.soft));
    cmp("required", a.required.to_string(), b.required.to_string());
    cmp("code list", opt(&a.codelist), opt(&b.codelist));
    cmp(
        "asked when",
        format!("{:?}", a.ask_when),
        format!("{:?}", b.ask_when),
    );
    cmp("label", a.label.en.clone(), b.label.en.clone());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_of(version: &str, dly_edit: impl Fn(&str) -> String) -> Vec<(String, String)> {
        let (sp, st) = crate::trial::STUDY_FILE;
        let mut v = vec![(
            sp.to_string(),
            st.replacen(
                &format!("version = \"{}\"", crate::trial::BASE_VERSION),
                &format!("version = \"{version}\""),
                1,
            ),
        )];
        for (p, t) in crate::trial::FORM_FILES {
            let t = if p.ends_with("DLY.toml") {
                dly_edit(t)
            } else {
                t.to_string()
            };
            v.push((p.to_string(), t));
        }
        v
    }

    fn base() -> Arc<Study> {
        Arc::new(crate::trial::definition().unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn a_site_uses_the_base_until_its_activation_and_the_latest_after() {
        let mut d = Definitions::new(base());
        d.add("1.2.0", &files_of("1.2.0", str::to_string));
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        d.activate(Activation {
            site: "01".into(),
            version: "1.2.0".into(),
            from: day("2026-05-01"),
        });
        assert_eq!(
            d.in_force("01", day("2026-04-30")),
            crate::trial::BASE_VERSION
        );
        assert_eq!(d.in_force("01", day("2026-05-01")), "1.2.0");
        assert_eq!(
            d.in_force("02", day("2026-06-01")),
            crate::trial::BASE_VERSION
        );
        assert_eq!(
            d.in_force_study("01", day("2026-05-02")).unwrap().version,
            "1.2.0"
        );
        assert_eq!(d.all().len(), 2);
    }

    #[test]
    fn a_version_this_app_cannot_load_is_too_old_never_another() {
        let mut d = Definitions::new(base());
        let future = files_of("9.0.0", |t| {
            t.replacen("[[items]]", "colour = \"red\"\n[[items]]", 1)
        });
        d.add("9.0.0", &future);
        let e = d.version("9.0.0").unwrap_err();
        assert!(matches!(e, VersionError::TooOld { .. }), "{e}");
        assert!(e.to_string().contains("too old"), "{e}");
        let mut needs = files_of("9.1.0", str::to_string);
        needs[0].1 = needs[0]
            .1
            .replacen("registry =", "requires_app = \"99.0.0\"\nregistry =", 1);
        d.add("9.1.0", &needs);
        let e = d.version("9.1.0").unwrap_err().to_string();
        assert!(e.contains("requires app 99.0.0"), "{e}");
        assert!(matches!(d.version("3.0.0"), Err(VersionError::Unknown(_))));
    }

    #[test]
    fn the_merged_definition_keeps_an_item_only_an_older_version_has() {
        let mut d = Definitions::new(base());
        d.add(
            "1.2.0",
            &files_of("1.2.0", |t| {
                t.replacen(
                    "[[items]]\nid = \"AUG_DBP\"",
                    "[[items]]\nid = \"AUG_DBP_X\"",
                    1,
                )
                .replace("\"AUG_DBP\"", "\"AUG_DBP_X\"")
            }),
        );
        let v = d.version("1.2.0").unwrap_or_else(|e| panic!("{e}"));
        assert!(v.form("DLY").unwrap().item("AUG_DBP").is_none());
        let m = d.merged();
        assert_eq!(m.version, "1.2.0");
        let dly = m.form("DLY").unwrap();
        assert!(dly.item("AUG_DBP").is_some() && dly.item("AUG_DBP_X").is_some());
    }

    #[test]
    fn the_diff_names_added_items_and_changed_ranges() {
        let a = base();
        let b = load_files(&files_of("1.2.0", |t| {
            t.replacen(
                "[[items]]\nid = \"ECMO_STATUS\"",
                "[[items]]\nid = \"NEW_NOTE\"\nsection = \"status\"\nlabel = { en = \"A new note\", zh = \"新备注\" }\ntype = \"text\"\n\n[[items]]\nid = \"ECMO_STATUS\"",
                1,
            )
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let d = diff(&a, &b);
        assert!(
            d.iter()
                .any(|x| x.item.as_deref() == Some("NEW_NOTE") && x.what.starts_with("item added")),
            "{d:?}"
        );
        assert!(diff(&a, &a).is_empty());
        assert!(version_key("1.10.0") > version_key("1.9.0"));
    }
}
