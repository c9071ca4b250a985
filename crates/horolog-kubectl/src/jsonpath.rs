//! kubectl's JSONPath templates (`-o jsonpath='{.items[*].metadata.name}'`), the part of them
//! people use: text, `{.a.b}`, `{.a['b-c']}`, `{.items[0]}`, `{.items[-1]}`, `{.items[*].x}`,
//! `{..name}` (recursive descent), `{.*}`, and quoted text `{"\n"}`. Several results of one
//! expression are joined by a space, strings are printed bare and other values as JSON, as
//! kubectl does. `range`/`end` and filters are not supported and say so.

use serde_json::Value;

/// A parsed template: text and expressions in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Path(Vec<Step>),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Descend(String),
}

impl Template {
    /// Parses `template`; an error says what is wrong and where.
    pub fn parse(template: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                parts.push(Part::Text(rest.to_string()));
                break;
            };
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = closing(after).ok_or_else(|| format!("unclosed {{ at {:?}", &rest[open..]))?;
            parts.push(expression(after[..close].trim())?);
            rest = &after[close + 1..];
        }
        Ok(Template { parts })
    }

    /// The template filled in from `value`. A path that finds nothing is an error, as in
    /// kubectl.
    pub fn render(&self, value: &Value) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Path(steps) => {
                    let found = walk(value, steps);
                    if found.is_empty() && steps.iter().all(|s| !matches!(s, Step::All | Step::Descend(_))) {
                        return Err(format!("{} is not found", describe(steps)));
                    }
                    let texts: Vec<String> = found
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect();
                    out.push_str(&texts.join(" "));
                }
            }
        }
        Ok(out)
    }
}

/// The index of the `}` that closes an expression, skipping quoted text.
fn closing(text: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '}') => return Some(i),
            _ => {}
        }
    }
    None
}

fn expression(text: &str) -> Result<Part, String> {
    if let Some(quoted) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        return Ok(Part::Text(
            quoted
                .replace("\\n", "\n")
                .replace("\\t", "\t")
                .replace("\\\"", "\""),
        ));
    }
    if text.starts_with("range") || text == "end" || text.contains("?(") {
        return Err(format!(
            "{{{text}}}: range, end and filters are not supported; use -o json and jq"
        ));
    }
    let path = text.strip_prefix('$').unwrap_or(text);
    if path.is_empty() {
        return Ok(Part::Path(Vec::new()));
    }
    if !path.starts_with('.') && !path.starts_with('[') {
        return Err(format!("{{{text}}}: a path starts with . or ["));
    }
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("..") {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return Err(format!("{{{text}}}: .. needs a field name"));
            }
            steps.push(Step::Descend(after[..end].to_string()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            match &after[..end] {
                "" => return Err(format!("{{{text}}}: empty field name")),
                "*" => steps.push(Step::All),
                name => steps.push(Step::Field(name.to_string())),
            }
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or_else(|| format!("{{{text}}}: unclosed ["))?;
            let inside = after[..end].trim();
            let step =
                if inside == "*" {
                    Step::All
                } else if let Some(name) = inside
                    .strip_prefix('\'')
                    .and_then(|n| n.strip_suffix('\''))
                    .or_else(|| inside.strip_prefix('"').and_then(|n| n.strip_suffix('"')))
                {
                    Step::Field(name.to_string())
                } else {
                    Step::Index(inside.parse().map_err(|_| {
                        format!("{{{text}}}: [{inside}] is not an index, '*' or a quoted name")
                    })?)
                };
            steps.push(step);
            rest = &after[end + 1..];
        } else {
            return Err(format!("{{{text}}}: unexpected {rest:?}"));
        }
    }
    Ok(Part::Path(steps))
}

fn walk<'a>(value: &'a Value, steps: &[Step]) -> Vec<&'a Value> {
    let mut current = vec![value];
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => next.extend(v.get(name)),
                Step::Index(i) => {
                    if let Value::Array(items) = v {
                        let at = if *i < 0 { items.len() as i64 + i } else { *i };
                        next.extend(usize::try_from(at).ok().and_then(|at| items.get(at)));
                    }
                }
                Step::All => match v {
                    Value::Array(items) => next.extend(items.iter()),
                    Value::Object(map) => next.extend(map.values()),
                    _ => {}
                },
                Step::Descend(name) => descend(v, name, &mut next),
            }
        }
        current = next;
    }
    current
}

fn descend<'a>(value: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if let Some(v) = map.get(name) {
                out.push(v);
            }
            for v in map.values() {
                descend(v, name, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| descend(v, name, out)),
        _ => {}
    }
}

fn describe(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| match s {
            Step::Field(n) => format!(".{n}"),
            Step::Index(i) => format!("[{i}]"),
            Step::All => "[*]".into(),
            Step::Descend(n) => format!("..{n}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: &str, value: &Value) -> Result<String, String> {
        Template::parse(template)?.render(value)
    }

    #[test]
    fn paths_indexes_wildcards_and_text_fill_the_template() {
        let list = json!({"items": [
            {"name": "a", "phase": "Succeeded", "exitCode": 0, "labels": {"x-y": "1"}},
            {"name": "b", "phase": "Failed", "exitCode": 3},
        ]});
        assert_eq!(render("{.items[*].name}", &list).unwrap(), "a b");
        assert_eq!(render("{.items[0].phase}", &list).unwrap(), "Succeeded");
        assert_eq!(render("{.items[-1].exitCode}", &list).unwrap(), "3");
        assert_eq!(render("{.items[0].labels['x-y']}", &list).unwrap(), "1");
        assert_eq!(render("{$.items[1].name}", &list).unwrap(), "b");
        assert_eq!(render("{..phase}", &list).unwrap(), "Succeeded Failed");
        assert_eq!(render("n={.items[1].name}{\"\\n\"}", &list).unwrap(), "n=b\n");
        assert_eq!(render("{.items[0].labels}", &list).unwrap(), r#"{"x-y":"1"}"#);
    }

    #[test]
    fn what_it_cannot_do_or_find_is_named() {
        let value = json!({"a": 1});
        assert!(render("{.b}", &value).unwrap_err().contains(".b is not found"));
        assert!(Template::parse("{.a").unwrap_err().contains("unclosed"));
        assert!(
            Template::parse("{range .items[*]}")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(Template::parse("{.a[x]}").unwrap_err().contains("not an index"));
        assert!(Template::parse("{a}").unwrap_err().contains("starts with"));
    }
}
