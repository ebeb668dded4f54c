//! Reading a study definition back from ODM 1.3.2 (`ecrf study import-odm`).
//!
//! Owns the reverse of [`crate::odm`]'s metadata mapping: ODM → the `study/` TOML files
//! (`study.toml` + `forms/<ID>.toml`), which are then loaded by the same loader as the
//! repository's own definition, so an imported definition is checked exactly like one typed by
//! hand. Invariant: what `odm::write_definition` wrote comes back identical.

use std::collections::BTreeMap;

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use toml::{Table, Value as Toml};

use crate::ExportError;
use crate::odm::oid;

/// A parsed XML element.
#[derive(Debug, Default, Clone)]
pub struct Element {
    /// Local name.
    pub name: String,
    /// Attributes (local names, values unescaped).
    pub attrs: BTreeMap<String, String>,
    /// Child elements.
    pub children: Vec<Element>,
    /// Text content.
    pub text: String,
}

impl Element {
    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }
    /// Children with this name.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// The first child with this name.
    pub fn first(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    /// Every descendant with this name, depth first.
    pub fn descendants<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        for c in &self.children {
            if c.name == name {
                out.push(c);
            }
            c.descendants(name, out);
        }
    }
    /// The value of an `Alias` child with this context.
    pub fn alias(&self, context: &str) -> Option<&str> {
        self.all("Alias")
            .find(|a| a.attr("Context") == Some(context))
            .and_then(|a| a.attr("Name"))
    }
    /// `TranslatedText` children of a child element, by language.
    pub fn translated(&self, child: &str) -> Option<(String, String)> {
        let c = self.first(child)?;
        let get = |lang: &str| {
            c.all("TranslatedText")
                .find(|t| t.attr("lang") == Some(lang))
                .map(|t| t.text.clone())
        };
        Some((get("en")?, get("zh").unwrap_or_default()))
    }
}

fn local(name: &str) -> String {
    match name.rsplit_once(':') {
        Some((_, l)) => l.to_string(),
        None => name.to_string(),
    }
}

fn bad(msg: impl Into<String>) -> ExportError {
    ExportError::Odm(msg.into())
}

/// Parses an XML document into elements.
pub fn parse(xml: &str) -> Result<Element, ExportError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::default()];
    let element = |e: &quick_xml::events::BytesStart| -> Result<Element, ExportError> {
        let mut el = Element {
            name: local(e.name().as_ref()),
            ..Element::default()
        };
        for a in e.attributes() {
            let a = a.map_err(|e| bad(format!("bad attribute: {e}")))?;
            let v = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| bad(format!("bad attribute value: {e}")))?;
            el.attrs.insert(local(a.key.as_ref()), v.into_owned());
        }
        Ok(el)
    };
    loop {
        let ev = reader.read_event().map_err(|e| {
            bad(format!(
                "not well-formed XML at byte {}: {e}",
                reader.buffer_position()
            ))
        })?;
        match ev {
            Event::Start(e) => stack.push(element(&e)?),
            Event::Empty(e) => {
                let el = element(&e)?;
                if let Some(top) = stack.last_mut() {
                    top.children.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| bad("unbalanced end tag"))?;
                match stack.last_mut() {
                    Some(top) => top.children.push(el),
                    None => return Err(bad("unbalanced end tag")),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                let ch = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match &*r {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => return Err(bad(format!("unknown entity &{other};"))),
                    },
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&ch);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut root = stack.pop().ok_or_else(|| bad("empty document"))?;
    if !stack.is_empty() {
        return Err(bad("the document ends inside an element"));
    }
    root.children
        .pop()
        .filter(|r| r.name == "ODM")
        .ok_or_else(|| bad("the root element is not ODM"))
}

fn text_table(en: &str, zh: &str) -> Toml {
    let mut t = Table::new();
    t.insert("en".into(), Toml::String(en.into()));
    t.insert("zh".into(), Toml::String(zh.into()));
    Toml::Table(t)
}

fn translated(el: &Element, child: &str) -> Option<Toml> {
    el.translated(child).map(|(en, zh)| text_table(&en, &zh))
}

fn number(s: &str) -> Result<Toml, ExportError> {
    if s.contains('.') {
        s.parse::<f64>()
            .map(Toml::Float)
            .map_err(|_| bad(format!("range value {s} is not a number")))
    } else {
        s.parse::<i64>()
            .map(Toml::Integer)
            .map_err(|_| bad(format!("range value {s} is not a number")))
    }
}

/// The study definition of an ODM file as `study/` TOML files: `(path, text)` of `study.toml`
/// and of each form file (`forms/<ID>.toml`).
pub fn definition_files(xml: &str) -> Result<(String, Vec<(String, String)>), ExportError> {
    let odm = parse(xml)?;
    let study = odm.first("Study").ok_or_else(|| bad("no Study element"))?;
    let gv = study
        .first("GlobalVariables")
        .ok_or_else(|| bad("no GlobalVariables"))?;
    let mdv = study
        .first("MetaDataVersion")
        .ok_or_else(|| bad("no MetaDataVersion"))?;
    let study_oid = study.attr("OID").ok_or_else(|| bad("Study has no OID"))?;
    let version = mdv
        .attr("OID")
        .and_then(|o| o.strip_prefix("MDV."))
        .ok_or_else(|| bad("MetaDataVersion OID is not MDV.<version>"))?;
    let registry = gv
        .first("ProtocolName")
        .map(|p| p.text.clone())
        .unwrap_or_default();
    let protocol = mdv.first("Protocol").ok_or_else(|| bad("no Protocol"))?;
    let title =
        translated(protocol, "Description").ok_or_else(|| bad("Protocol has no Description"))?;

    let units: BTreeMap<String, String> = study
        .first("BasicDefinitions")
        .map(|b| {
            b.all("MeasurementUnit")
                .filter_map(|u| Some((u.attr("OID")?.to_string(), u.attr("Name")?.to_string())))
                .collect()
        })
        .unwrap_or_default();

    let mut st = Table::new();
    st.insert("id".into(), Toml::String(study_oid.into()));
    st.insert("version".into(), Toml::String(version.into()));
    st.insert("registry".into(), Toml::String(registry));
    st.insert("title".into(), title);

    let mut codelists = Table::new();
    for cl in mdv.all("CodeList") {
        if cl.alias("ecrf:builtin").is_some() {
            continue;
        }
        let name = cl
            .attr("Name")
            .ok_or_else(|| bad("CodeList without Name"))?;
        let mut t = Table::new();
        t.insert(
            "label".into(),
            translated(cl, "Description")
                .ok_or_else(|| bad(format!("code list {name} has no Description")))?,
        );
        let mut codes = Vec::new();
        for item in cl.all("CodeListItem") {
            let (en, zh) = item
                .translated("Decode")
                .ok_or_else(|| bad(format!("code list {name}: an item has no Decode")))?;
            let mut c = Table::new();
            c.insert(
                "code".into(),
                Toml::String(item.attr("CodedValue").unwrap_or_default().into()),
            );
            c.insert("en".into(), Toml::String(en));
            c.insert("zh".into(), Toml::String(zh));
            codes.push(Toml::Table(c));
        }
        t.insert("codes".into(), Toml::Array(codes));
        codelists.insert(name.into(), Toml::Table(t));
    }

    let by_oid = |kind: &'static str| -> BTreeMap<String, &Element> {
        mdv.all(kind)
            .filter_map(|e| Some((e.attr("OID")?.to_string(), e)))
            .collect()
    };
    let events = by_oid("StudyEventDef");
    let forms = by_oid("FormDef");
    let groups = by_oid("ItemGroupDef");
    let items = by_oid("ItemDef");
    let lists = by_oid("CodeList");
    let mut rules_by_form: BTreeMap<String, Vec<Toml>> = BTreeMap::new();
    for cd in mdv.all("ConditionDef") {
        let Some(expr) = cd
            .all("FormalExpression")
            .find(|f| f.attr("Context") == Some("ecrf-rule"))
        else {
            continue;
        };
        let json: serde_json::Value = serde_json::from_str(&expr.text)
            .map_err(|e| bad(format!("rule {}: {e}", cd.attr("Name").unwrap_or("?"))))?;
        let mut r = Table::new();
        r.insert(
            "id".into(),
            Toml::String(cd.attr("Name").unwrap_or_default().into()),
        );
        let s = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_string);
        r.insert("kind".into(), Toml::String(s("kind").unwrap_or_default()));
        for k in ["left", "op", "right", "item"] {
            if let Some(v) = s(k) {
                r.insert(k.into(), Toml::String(v));
            }
        }
        if let Some(w) = json.get("when") {
            r.insert("when".into(), condition(w)?);
        }
        r.insert(
            "severity".into(),
            Toml::String(s("severity").unwrap_or_default()),
        );
        r.insert(
            "message".into(),
            translated(cd, "Description").ok_or_else(|| bad("a rule has no message"))?,
        );
        rules_by_form
            .entry(s("form").unwrap_or_default())
            .or_default()
            .push(Toml::Table(r));
    }

    let mut form_ids = Vec::new();
    let mut files = Vec::new();
    for se_ref in protocol.all("StudyEventRef") {
        let se_oid = se_ref.attr("StudyEventOID").unwrap_or_default();
        let se = events
            .get(se_oid)
            .ok_or_else(|| bad(format!("StudyEventRef to unknown {se_oid}")))?;
        let form_oid = se
            .first("FormRef")
            .and_then(|f| f.attr("FormOID"))
            .ok_or_else(|| bad(format!("{se_oid} has no FormRef")))?;
        let fd = forms
            .get(form_oid)
            .ok_or_else(|| bad(format!("FormRef to unknown {form_oid}")))?;
        let id = form_oid.strip_prefix("F.").unwrap_or(form_oid).to_string();
        let mut f = Table::new();
        f.insert("id".into(), Toml::String(id.clone()));
        f.insert(
            "name".into(),
            translated(fd, "Description").ok_or_else(|| bad(format!("form {id} has no name")))?,
        );
        if let Some(w) = translated(se, "Description") {
            f.insert("when".into(), w);
        }
        let repeat = fd.alias("ecrf:repeat").unwrap_or("once");
        f.insert("repeat".into(), Toml::String(repeat.into()));
        if repeat != "once" {
            let n: i64 = fd
                .alias("ecrf:max_repeats")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| bad(format!("form {id}: no ecrf:max_repeats")))?;
            f.insert("max_repeats".into(), Toml::Integer(n));
        }
        f.insert(
            "entry".into(),
            Toml::String(fd.alias("ecrf:entry").unwrap_or("user").into()),
        );
        let mut sections = Vec::new();
        let mut form_items: Vec<(i64, Toml)> = Vec::new();
        for gref in fd.all("ItemGroupRef") {
            let g_oid = gref.attr("ItemGroupOID").unwrap_or_default();
            let g = groups
                .get(g_oid)
                .ok_or_else(|| bad(format!("ItemGroupRef to unknown {g_oid}")))?;
            let sid = g.attr("Name").unwrap_or_default().to_string();
            let mut s = Table::new();
            s.insert("id".into(), Toml::String(sid.clone()));
            s.insert(
                "label".into(),
                translated(g, "Description")
                    .ok_or_else(|| bad(format!("section {sid} has no title")))?,
            );
            sections.push(Toml::Table(s));
            for iref in g.all("ItemRef") {
                let i_oid = iref.attr("ItemOID").unwrap_or_default();
                let it = items
                    .get(i_oid)
                    .ok_or_else(|| bad(format!("ItemRef to unknown {i_oid}")))?;
                let order: i64 = iref
                    .attr("OrderNumber")
                    .and_then(|o| o.parse().ok())
                    .unwrap_or(0);
                form_items.push((order, item_toml(it, iref, &sid, &units, &lists)?));
            }
        }
        form_items.sort_by_key(|(o, _)| *o);
        f.insert("sections".into(), Toml::Array(sections));
        f.insert(
            "items".into(),
            Toml::Array(form_items.into_iter().map(|(_, t)| t).collect()),
        );
        if let Some(rules) = rules_by_form.remove(&id) {
            f.insert("rules".into(), Toml::Array(rules));
        }
        let path = fd
            .alias("ecrf:file")
            .map(str::to_string)
            .unwrap_or_else(|| format!("forms/{id}.toml"));
        let text = toml::to_string(&f).map_err(|e| bad(format!("form {id}: {e}")))?;
        files.push((path, text));
        form_ids.push(Toml::String(id));
    }
    st.insert("forms".into(), Toml::Array(form_ids));
    st.insert("codelists".into(), Toml::Table(codelists));
    let study_text = toml::to_string(&st).map_err(|e| bad(format!("study.toml: {e}")))?;
    Ok((study_text, files))
}

fn condition(w: &serde_json::Value) -> Result<Toml, ExportError> {
    let mut t = Table::new();
    t.insert(
        "item".into(),
        Toml::String(
            w.get("item")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .into(),
        ),
    );
    let is = w
        .get("is")
        .and_then(|v| v.as_array())
        .ok_or_else(|| bad("a condition has no codes"))?
        .iter()
        .map(|c| Toml::String(c.as_str().unwrap_or_default().into()))
        .collect();
    t.insert("is".into(), Toml::Array(is));
    Ok(Toml::Table(t))
}

fn item_toml(
    it: &Element,
    iref: &Element,
    section: &str,
    units: &BTreeMap<String, String>,
    lists: &BTreeMap<String, &Element>,
) -> Result<Toml, ExportError> {
    let id = it.attr("Name").unwrap_or_default().to_string();
    let mut t = Table::new();
    t.insert("id".into(), Toml::String(id.clone()));
    t.insert("section".into(), Toml::String(section.into()));
    t.insert(
        "label".into(),
        translated(it, "Question").ok_or_else(|| bad(format!("item {id} has no Question")))?,
    );
    if let Some(h) = translated(it, "Description") {
        t.insert("help".into(), h);
    }
    let ty = it
        .alias("ecrf:type")
        .ok_or_else(|| bad(format!("item {id} has no ecrf:type")))?;
    t.insert("type".into(), Toml::String(ty.into()));
    if let Some(u) = it
        .first("MeasurementUnitRef")
        .and_then(|u| u.attr("MeasurementUnitOID"))
    {
        let name = units
            .get(u)
            .ok_or_else(|| bad(format!("item {id}: unknown unit {u}")))?;
        t.insert("unit".into(), Toml::String(name.clone()));
    }
    for (key, sh) in [("hard", "Hard"), ("soft", "Soft")] {
        let mut min = None;
        let mut max = None;
        for rc in it
            .all("RangeCheck")
            .filter(|r| r.attr("SoftHard") == Some(sh))
        {
            let v = rc
                .first("CheckValue")
                .map(|c| c.text.trim().to_string())
                .unwrap_or_default();
            match rc.attr("Comparator") {
                Some("GE") => min = Some(number(&v)?),
                Some("LE") => max = Some(number(&v)?),
                other => return Err(bad(format!("item {id}: range comparator {other:?}"))),
            }
        }
        if let (Some(a), Some(b)) = (min, max) {
            t.insert(key.into(), Toml::Array(vec![a, b]));
        }
    }
    if let Some(d) = it.attr("SignificantDigits") {
        let d: i64 = d
            .parse()
            .map_err(|_| bad(format!("item {id}: SignificantDigits")))?;
        t.insert("decimals".into(), Toml::Integer(d));
    }
    if let Some(cl) = it.first("CodeListRef").and_then(|c| c.attr("CodeListOID")) {
        let list = lists
            .get(cl)
            .ok_or_else(|| bad(format!("item {id}: unknown code list {cl}")))?;
        if list.alias("ecrf:builtin").is_none() {
            let name = list.attr("Name").unwrap_or_default();
            debug_assert_eq!(oid::codelist(name), cl);
            t.insert("codelist".into(), Toml::String(name.into()));
        }
    }
    if ty == "text"
        && let Some(l) = it.attr("Length")
    {
        let l: i64 = l.parse().map_err(|_| bad(format!("item {id}: Length")))?;
        if l != 500 {
            t.insert("max_length".into(), Toml::Integer(l));
        }
    }
    if iref.attr("Mandatory") == Some("Yes") {
        t.insert("required".into(), Toml::Boolean(true));
    }
    if let Some(m) = it.alias("ecrf:missing") {
        t.insert(
            "missing".into(),
            Toml::Array(
                m.split_whitespace()
                    .map(|c| Toml::String(c.into()))
                    .collect(),
            ),
        );
    }
    if let Some(a) = it.alias("ecrf:ask_when") {
        let w: serde_json::Value =
            serde_json::from_str(a).map_err(|e| bad(format!("item {id}: ask_when: {e}")))?;
        t.insert("ask_when".into(), condition(&w)?);
    }
    if let Some(a) = it.alias("ecrf:lab") {
        t.insert("lab".into(), lab_toml(&id, a)?);
    }
    if let Some(m) = iref.attr("MethodOID") {
        t.insert(
            "derived".into(),
            Toml::String(m.strip_prefix("MT.").unwrap_or(m).into()),
        );
    }
    Ok(Toml::Table(t))
}

/// `[items.lab]` from the `ecrf:lab` alias of an ItemDef.
fn lab_toml(id: &str, alias: &str) -> Result<Toml, ExportError> {
    let v: serde_json::Value =
        serde_json::from_str(alias).map_err(|e| bad(format!("item {id}: lab: {e}")))?;
    let mut lab = Table::new();
    let loinc: Vec<Toml> = v["loinc"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str())
        .map(|c| Toml::String(c.into()))
        .collect();
    lab.insert("loinc".into(), Toml::Array(loinc));
    let worst = v["worst"].as_str().unwrap_or_default();
    lab.insert("worst".into(), Toml::String(worst.into()));
    let mut from = Vec::new();
    for u in v["from"].as_array().into_iter().flatten() {
        let mut e = Table::new();
        e.insert(
            "unit".into(),
            Toml::String(u["unit"].as_str().unwrap_or_default().into()),
        );
        for key in ["multiply", "divide"] {
            if let Some(n) = u[key].as_str() {
                e.insert(key.into(), number(n)?);
            }
        }
        from.push(Toml::Table(e));
    }
    if !from.is_empty() {
        lab.insert("from".into(), Toml::Array(from));
    }
    Ok(Toml::Table(lab))
}

/// Reads a study definition from ODM and checks it with the study loader.
pub fn import_definition(xml: &str) -> Result<ecrf_core::Study, ExportError> {
    let (study, forms) = definition_files(xml)?;
    let refs: Vec<(&str, &str)> = forms
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    ecrf_core::Study::from_sources(("study.toml", &study), &refs)
        .map_err(|e| ExportError::Odm(e.to_string()))
}
