//! One rectangle per form, derived from the study definition: the shape every format writes.
//!
//! Owns the columns (key columns, then one per item in definition order; a multiple-choice item
//! becomes one 0/1 column per code), the numeric coding of code lists, and the cells. CSV,
//! Stata, SPSS and SAS files are all written from these tables, so they agree column by column.
//! Invariants: a row is one form instance that holds at least one value; a missing-data code is
//! a [`Cell::Missing`], never an empty cell; a derived item (BMI, VIS, IABP delay…) holds the
//! value `ecrf_core::outcome::derive_instance` gives, or its missing-data code; a value whose type does not fit its item is an
//! error naming subject, form and item, never a silent blank.

use chrono::{DateTime, FixedOffset, NaiveDate};
use ecrf_core::study::{ItemType, Repeat};
use ecrf_core::{Decimal, FormDef, ItemDef, MissingCode, Study, Text, Value};

use crate::ExportError;
use crate::source::TrialData;

/// What a column holds.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnKind {
    /// Whole numbers.
    Integer,
    /// Exact decimals.
    Decimal,
    /// Calendar dates.
    Date,
    /// Local date-times with their UTC offset.
    DateTime,
    /// Numbers standing for codes, with their labels.
    Coded(Vec<CodedValue>),
    /// Free text.
    Text,
}

impl ColumnKind {
    /// The type's name in the data dictionary.
    pub fn name(&self) -> &'static str {
        match self {
            ColumnKind::Integer => "integer",
            ColumnKind::Decimal => "decimal",
            ColumnKind::Date => "date",
            ColumnKind::DateTime => "datetime",
            ColumnKind::Coded(_) => "coded",
            ColumnKind::Text => "text",
        }
    }

    /// True when the column is numeric in statistics files.
    pub fn is_numeric(&self) -> bool {
        !matches!(self, ColumnKind::Text)
    }
}

/// One code of a coded column.
#[derive(Debug, Clone, PartialEq)]
pub struct CodedValue {
    /// The number written in the files.
    pub number: i32,
    /// The code as stored (`M`, `Y`, `RUNNING`).
    pub code: String,
    /// What it means.
    pub label: Text,
}

/// One column of a form table.
#[derive(Debug, Clone)]
pub struct Column {
    /// Variable name (letters, digits, `_`; at most 32 characters).
    pub name: String,
    /// Variable label.
    pub label: Text,
    /// What it holds.
    pub kind: ColumnKind,
    /// The item it comes from (none for key columns).
    pub item: Option<String>,
    /// For a multiple-choice indicator: the code it stands for.
    pub choice: Option<String>,
    /// Unit.
    pub unit: Option<String>,
    /// Missing-data codes allowed.
    pub missing: Vec<MissingCode>,
}

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Nothing entered.
    Empty,
    /// A missing-data code.
    Missing(MissingCode),
    /// A whole number (also the number of a code).
    Int(i64),
    /// An exact decimal.
    Dec(Decimal),
    /// A date.
    Date(NaiveDate),
    /// A local date-time with offset.
    DateTime(DateTime<FixedOffset>),
    /// Text.
    Text(String),
}

/// A form as a rectangle.
#[derive(Debug, Clone)]
pub struct Table {
    /// Form id.
    pub form: String,
    /// Form name.
    pub name: Text,
    /// Columns.
    pub columns: Vec<Column>,
    /// Rows (one per form instance with data).
    pub rows: Vec<Vec<Cell>>,
}

/// Number of key columns before the items: SUBJECT, SITE, ARM, VISIT, DAY, REPEAT.
pub const KEY_COLUMNS: usize = 7;

fn text(en: &str, zh: &str) -> Text {
    Text {
        en: en.into(),
        zh: zh.into(),
    }
}

/// The numbers of an item's codes: the codes themselves when all are whole numbers (mRS 0–6),
/// 1 / 0 for yes / no (and 9 for unknown), else their position in the list from 1.
pub fn coded_values(study: &Study, item: &ItemDef) -> Vec<CodedValue> {
    let codes = study.codes_for(item);
    let all_numeric = codes.iter().all(|c| c.code.parse::<i32>().is_ok());
    codes
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let number = match (item.item_type, c.code.as_str()) {
                (ItemType::YesNo | ItemType::YesNoUnk, "Y") => 1,
                (ItemType::YesNo | ItemType::YesNoUnk, "N") => 0,
                (ItemType::YesNoUnk, "U") => 9,
                _ if all_numeric => c.code.parse().unwrap_or(i as i32 + 1),
                _ => i as i32 + 1,
            };
            CodedValue {
                number,
                code: c.code,
                label: c.label,
            }
        })
        .collect()
}

/// The arm column's codes (from the RND form's ARM item).
fn arm_codes(study: &Study) -> Vec<CodedValue> {
    study
        .form("RND")
        .and_then(|f| f.item("ARM"))
        .map(|i| coded_values(study, i))
        .unwrap_or_default()
}

/// The columns of a form, in order.
pub fn columns(study: &Study, form: &FormDef) -> Vec<Column> {
    let key = |name: &str, label: Text, kind: ColumnKind| Column {
        name: name.into(),
        label,
        kind,
        item: None,
        choice: None,
        unit: None,
        missing: Vec::new(),
    };
    let mut cols = vec![
        key(
            "SUBJECT",
            text("Screening number", "筛选号"),
            ColumnKind::Text,
        ),
        key("SITE", text("Site", "中心"), ColumnKind::Text),
        key(
            "ARM",
            text("Randomized arm", "随机分组"),
            ColumnKind::Coded(arm_codes(study)),
        ),
        key("VISIT", text("Form instance", "表单实例"), ColumnKind::Text),
        key(
            "DAY",
            text(
                "Study day (day 0 = randomization)",
                "研究日（第0天=随机化）",
            ),
            ColumnKind::Integer,
        ),
        key(
            "REPEAT",
            text("Repeat number", "重复序号"),
            ColumnKind::Integer,
        ),
        key(
            "VERSION",
            text(
                "Study definition version the form was entered under",
                "表单录入时的研究定义版本",
            ),
            ColumnKind::Text,
        ),
    ];
    let keys: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
    for item in &form.items {
        // An item named like a key column (RND.ARM) is prefixed with its form: RND_ARM.
        let name = if keys.contains(&item.id) {
            format!("{}_{}", form.id, item.id)
        } else {
            item.id.clone()
        };
        // A derived item that cannot be computed is @UNK, or @NA where it does not apply
        // (`ecrf_core::outcome::derive_instance`): its column declares both.
        let missing = if item.derived.is_some() {
            vec![MissingCode::Unknown, MissingCode::NotApplicable]
        } else {
            item.missing.clone()
        };
        let base = Column {
            name,
            label: item.label.clone(),
            kind: ColumnKind::Text,
            item: Some(item.id.clone()),
            choice: None,
            unit: item.unit.clone(),
            missing,
        };
        match item.item_type {
            ItemType::Integer => cols.push(Column {
                kind: ColumnKind::Integer,
                ..base
            }),
            ItemType::Decimal => cols.push(Column {
                kind: ColumnKind::Decimal,
                ..base
            }),
            ItemType::Date => cols.push(Column {
                kind: ColumnKind::Date,
                ..base
            }),
            ItemType::DateTime => cols.push(Column {
                kind: ColumnKind::DateTime,
                ..base
            }),
            ItemType::Choice | ItemType::YesNo | ItemType::YesNoUnk => cols.push(Column {
                kind: ColumnKind::Coded(coded_values(study, item)),
                ..base
            }),
            ItemType::MultiChoice => {
                let yes_no = vec![
                    CodedValue {
                        number: 1,
                        code: "Y".into(),
                        label: text("Yes", "是"),
                    },
                    CodedValue {
                        number: 0,
                        code: "N".into(),
                        label: text("No", "否"),
                    },
                ];
                for code in study.codes_for(item) {
                    let mut name = format!("{}_{}", base.name, code.code);
                    name.truncate(32);
                    cols.push(Column {
                        name,
                        label: Text {
                            en: format!("{}: {}", item.label.en, code.label.en),
                            zh: format!("{}：{}", item.label.zh, code.label.zh),
                        },
                        kind: ColumnKind::Coded(yes_no.clone()),
                        choice: Some(code.code.clone()),
                        ..base.clone()
                    });
                }
            }
            ItemType::Text => cols.push(base),
        }
    }
    cols
}

fn mismatch(subject: &str, instance: &str, item: &str, v: &Value) -> ExportError {
    ExportError::Data(format!(
        "{subject} {instance} {item}: stored value {v} does not fit the item's type"
    ))
}

fn cell_for(
    col: &Column,
    value: Option<&Value>,
    subject: &str,
    instance: &str,
) -> Result<Cell, ExportError> {
    let item = col.item.as_deref().unwrap_or_default();
    let Some(v) = value else {
        return Ok(Cell::Empty);
    };
    if let Value::Missing(m) = v {
        return Ok(Cell::Missing(*m));
    }
    if let Some(code) = &col.choice {
        return match v {
            Value::Codes(cs) => Ok(Cell::Int(i64::from(cs.iter().any(|c| c == code)))),
            Value::Code(c) => Ok(Cell::Int(i64::from(c == code))),
            _ => Err(mismatch(subject, instance, item, v)),
        };
    }
    Ok(match (&col.kind, v) {
        (ColumnKind::Integer, Value::Int(i)) => Cell::Int(*i),
        (ColumnKind::Decimal, Value::Dec(d)) => Cell::Dec(*d),
        (ColumnKind::Decimal, Value::Int(i)) => Cell::Dec(Decimal::from_int(*i)),
        (ColumnKind::Date, Value::Date(d)) => Cell::Date(*d),
        (ColumnKind::DateTime, Value::DateTime(t)) => Cell::DateTime(*t),
        (ColumnKind::Coded(codes), Value::Code(c)) => match codes.iter().find(|k| &k.code == c) {
            Some(k) => Cell::Int(i64::from(k.number)),
            None => {
                return Err(ExportError::Data(format!(
                    "{subject} {instance} {item}: code {c} is not in the item's code list"
                )));
            }
        },
        (ColumnKind::Text, Value::Text(t)) => Cell::Text(t.clone()),
        (ColumnKind::Text, other) => Cell::Text(other.to_string()),
        _ => return Err(mismatch(subject, instance, item, v)),
    })
}

/// Form instances of a subject for a form, in repeat order.
fn instances<'a>(
    form: &FormDef,
    by_instance: &'a std::collections::BTreeMap<String, std::collections::BTreeMap<String, Value>>,
) -> Vec<(Option<u32>, &'a str)> {
    let mut out: Vec<(Option<u32>, &str)> = by_instance
        .keys()
        .filter_map(|k| match k.split_once('#') {
            Some((f, n)) if f == form.id => n.parse().ok().map(|n| (Some(n), k.as_str())),
            None if *k == form.id => Some((None, k.as_str())),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// Subject → form instance → derived item → value ([`TrialData::derived`]).
pub type Derived = std::collections::BTreeMap<
    String,
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, Value>>,
>;

/// The table of one form over the whole trial data; a derived item's cell is its value in
/// `derived` (or its missing-data code), never a blank.
pub fn form_table(
    study: &Study,
    form: &FormDef,
    data: &TrialData,
    derived: &Derived,
) -> Result<Table, ExportError> {
    let columns = columns(study, form);
    let arms = arm_codes(study);
    let mut rows = Vec::new();
    for subject in &data.subjects {
        let Some(by_instance) = data.values.get(&subject.subject) else {
            continue;
        };
        let arm = by_instance
            .get("RND")
            .and_then(|v| v.get("ARM"))
            .and_then(|v| match v {
                Value::Code(c) => arms.iter().find(|a| &a.code == c),
                _ => None,
            })
            .map(|a| Cell::Int(i64::from(a.number)))
            .unwrap_or(Cell::Empty);
        let subject_derived = derived.get(&subject.subject);
        for (repeat, instance) in instances(form, by_instance) {
            let values = &by_instance[instance];
            if values.is_empty() {
                continue;
            }
            let own_derived = subject_derived.and_then(|d| d.get(instance));
            let mut row = Vec::with_capacity(columns.len());
            row.push(Cell::Text(subject.subject.clone()));
            row.push(Cell::Text(subject.site.clone()));
            row.push(arm.clone());
            row.push(Cell::Text(instance.to_string()));
            let n = repeat.map(i64::from).map(Cell::Int).unwrap_or(Cell::Empty);
            row.push(if form.repeat == Repeat::ByDay {
                n.clone()
            } else {
                Cell::Empty
            });
            row.push(n);
            row.push(Cell::Text(
                data.version_of(&subject.subject, instance).to_string(),
            ));
            for col in &columns[KEY_COLUMNS..] {
                let item = col.item.as_deref().unwrap_or_default();
                let value = values
                    .get(item)
                    .or_else(|| own_derived.and_then(|d| d.get(item)));
                row.push(cell_for(col, value, &subject.subject, instance)?);
            }
            rows.push(row);
        }
    }
    Ok(Table {
        form: form.id.clone(),
        name: form.name.clone(),
        columns,
        rows,
    })
}
