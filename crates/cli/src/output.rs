//! Output: readable tables by default, `-f json|yaml|value` and
//! `-c COLUMN` for scripts.
//!
//! JSON and YAML keep the API's field names and raw values (an object for
//! `show`, an array for `list`); tables and `value` render each value as
//! text (references as their id or name, addresses as `net=ip`, lists
//! comma-separated).

use crate::exit::{CliError, CliResult};
use comfy_table::{ContentLineStyle, LineStyle, Table, TableStyle};
use serde_json::{Map, Value};

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    #[default]
    Table,
    /// JSON: an object for show, an array for list.
    Json,
    /// YAML, same shapes as JSON.
    Yaml,
    /// Bare values, space-separated, one row per line.
    Value,
}

/// The output options of every command that prints resources.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Show only this column/field (repeatable); API field name or header.
    #[arg(short = 'c', long = "column", value_name = "COLUMN")]
    pub columns: Vec<String>,
}

/// Renders a field's value as table text.
pub type Render = Box<dyn Fn(&Value) -> String>;

/// A list column: its header, the API field it shows, and how to render
/// it as text.
pub struct Col {
    /// Table header.
    pub header: &'static str,
    /// API field.
    pub key: &'static str,
    /// Text rendering (default: [`render`]).
    pub render: Option<Render>,
}

impl Col {
    /// A column rendered generically.
    pub fn new(header: &'static str, key: &'static str) -> Col {
        Col {
            header,
            key,
            render: None,
        }
    }

    /// A column with its own rendering of the field's value.
    pub fn with(
        header: &'static str,
        key: &'static str,
        f: impl Fn(&Value) -> String + 'static,
    ) -> Col {
        Col {
            header,
            key,
            render: Some(Box::new(f)),
        }
    }

    fn text(&self, item: &Value) -> String {
        let v = &item[self.key];
        match &self.render {
            Some(f) => f(v),
            None => render(v),
        }
    }
}

/// A value as one line of text.
pub fn render(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) => v.to_string(),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::Object(o) => ["name", "addr", "id"]
                    .iter()
                    .find_map(|k| o.get(*k).filter(|v| !v.is_null()).map(render))
                    .unwrap_or_else(|| render_object(o)),
                other => render(other),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(o) => {
            let keys: Vec<&str> = o.keys().map(String::as_str).collect();
            if o.contains_key("id") && keys.iter().all(|k| matches!(*k, "id" | "links")) {
                render(&o["id"])
            } else {
                render_object(o)
            }
        }
    }
}

fn render_object(o: &Map<String, Value>) -> String {
    o.iter()
        .map(|(k, v)| format!("{k}={}", render(v)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn new_table(headers: Vec<String>) -> Table {
    // The OpenStack client's look: +---+ borders, one line under the header.
    const STYLE: TableStyle = TableStyle::new()
        .top_border(LineStyle::new('+', '-', '+', '+'))
        .header_lines(ContentLineStyle::new('|', '|', '|'))
        .header_separator(LineStyle::new('+', '-', '+', '+'))
        .content_lines(ContentLineStyle::new('|', '|', '|'))
        .bottom_border(LineStyle::new('+', '-', '+', '+'));
    let mut t = Table::new();
    t.load_style(STYLE).force_no_tty();
    t.set_header(headers);
    t
}

/// Which columns `-c` selects among `cols`; a name that is no column but
/// an API field of the items gets a generic column.
fn select<'a>(cols: &'a [Col], wanted: &[String], items: &[Value]) -> CliResult<Vec<Sel<'a>>> {
    if wanted.is_empty() {
        return Ok(cols.iter().map(Sel::Col).collect());
    }
    wanted
        .iter()
        .map(|w| {
            if let Some(c) = cols
                .iter()
                .find(|c| c.header.eq_ignore_ascii_case(w) || c.key == w)
            {
                Ok(Sel::Col(c))
            } else if items.iter().any(|i| i.get(w.as_str()).is_some()) {
                Ok(Sel::Field(w.clone()))
            } else {
                Err(CliError::usage(format!(
                    "unknown column '{w}'; columns: {}",
                    cols.iter().map(|c| c.key).collect::<Vec<_>>().join(", ")
                )))
            }
        })
        .collect()
}

enum Sel<'a> {
    Col(&'a Col),
    Field(String),
}

impl Sel<'_> {
    fn header(&self) -> String {
        match self {
            Sel::Col(c) => c.header.to_owned(),
            Sel::Field(f) => f.clone(),
        }
    }
    fn key(&self) -> &str {
        match self {
            Sel::Col(c) => c.key,
            Sel::Field(f) => f,
        }
    }
    fn text(&self, item: &Value) -> String {
        match self {
            Sel::Col(c) => c.text(item),
            Sel::Field(f) => render(&item[f.as_str()]),
        }
    }
}

/// Formats a listing.
pub fn list_text(items: &[Value], cols: &[Col], out: &OutputArgs) -> CliResult<String> {
    let sel = select(cols, &out.columns, items)?;
    Ok(match out.format {
        Format::Table => {
            let mut t = new_table(sel.iter().map(Sel::header).collect());
            for i in items {
                t.add_row(sel.iter().map(|s| s.text(i)).collect::<Vec<_>>());
            }
            format!("{t}\n")
        }
        Format::Value => items
            .iter()
            .map(|i| {
                let row: Vec<String> = sel.iter().map(|s| s.text(i)).collect();
                format!("{}\n", row.join(" "))
            })
            .collect(),
        Format::Json | Format::Yaml => {
            let arr: Vec<Value> = items
                .iter()
                .map(|i| {
                    let mut m = Map::new();
                    for s in &sel {
                        m.insert(s.key().to_owned(), i[s.key()].clone());
                    }
                    Value::Object(m)
                })
                .collect();
            structured(&Value::Array(arr), out.format)?
        }
    })
}

/// Formats one resource: every field (sorted), or the `-c` ones.
pub fn show_text(item: &Value, out: &OutputArgs) -> CliResult<String> {
    let obj = item.as_object().cloned().unwrap_or_default();
    let fields: Vec<(String, Value)> = if out.columns.is_empty() {
        obj.into_iter().filter(|(k, _)| k != "links").collect()
    } else {
        out.columns
            .iter()
            .map(|c| match obj.get(c) {
                Some(v) => Ok((c.clone(), v.clone())),
                None => Err(CliError::usage(format!(
                    "unknown field '{c}'; fields: {}",
                    obj.keys().cloned().collect::<Vec<_>>().join(", ")
                ))),
            })
            .collect::<CliResult<_>>()?
    };
    Ok(match out.format {
        Format::Table => {
            let mut t = new_table(vec!["Field".into(), "Value".into()]);
            for (k, v) in &fields {
                t.add_row(vec![k.clone(), render(v)]);
            }
            format!("{t}\n")
        }
        Format::Value => fields
            .iter()
            .map(|(_, v)| format!("{}\n", render(v)))
            .collect(),
        Format::Json | Format::Yaml => {
            structured(&Value::Object(fields.into_iter().collect()), out.format)?
        }
    })
}

fn structured(v: &Value, f: Format) -> CliResult<String> {
    match f {
        Format::Yaml => serde_saphyr::to_string(v)
            .map_err(|e| CliError::failure(format!("cannot write YAML: {e}"))),
        _ => Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(v).unwrap_or_default()
        )),
    }
}

/// Prints a listing.
pub fn print_list(items: &[Value], cols: &[Col], out: &OutputArgs) -> CliResult {
    print!("{}", list_text(items, cols, out)?);
    Ok(())
}

/// Prints one resource.
pub fn print_show(item: &Value, out: &OutputArgs) -> CliResult {
    print!("{}", show_text(item, out)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_render_for_people() {
        assert_eq!(render(&json!({"id": "f1", "links": []})), "f1");
        assert_eq!(
            render(&json!({"net": [{"addr": "10.0.0.3", "version": 4}]})),
            "net=10.0.0.3"
        );
        assert_eq!(
            render(&json!([{"name": "default"}, {"name": "web"}])),
            "default, web"
        );
        assert_eq!(render(&json!(null)), "");
    }

    #[test]
    fn columns_select_fields() {
        let items = vec![json!({"id": "1", "name": "a", "status": "ACTIVE", "extra": 5})];
        let cols = vec![Col::new("ID", "id"), Col::new("Name", "name")];
        let out = OutputArgs {
            format: Format::Value,
            columns: vec!["name".into(), "extra".into()],
        };
        assert_eq!(list_text(&items, &cols, &out).unwrap(), "a 5\n");
        let out = OutputArgs {
            format: Format::Json,
            columns: vec![],
        };
        let j: Value = serde_json::from_str(&list_text(&items, &cols, &out).unwrap()).unwrap();
        assert_eq!(j, json!([{"id": "1", "name": "a"}]));
        let bad = OutputArgs {
            format: Format::Table,
            columns: vec!["nope".into()],
        };
        assert!(list_text(&items, &cols, &bad).is_err());
    }
}
