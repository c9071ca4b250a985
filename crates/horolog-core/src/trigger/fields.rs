//! APScheduler CronTrigger field expressions (`*`, `*/n`, `a-b/n`, names, `last`, `2nd mon`),
//! parsed into bit sets. Where APScheduler silently misreads an input (unanchored name
//! patterns, discarded day-of-week steps), this parser either implements the reading a
//! crontab user expects or rejects the input; it never drops part of an expression.

/// Which CronTrigger field an expression belongs to; fixes its range and extra syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Year,
    Month,
    Day,
    Week,
    DayOfWeek,
    Hour,
    Minute,
    Second,
}

impl FieldKind {
    /// The field's smallest and largest value (day of week in crontab numbering, 0 and 7 = Sunday).
    fn range(self) -> (u32, u32) {
        match self {
            FieldKind::Year => (1970, 9999),
            FieldKind::Month => (1, 12),
            FieldKind::Day => (1, 31),
            FieldKind::Week => (1, 53),
            FieldKind::DayOfWeek => (0, 7),
            FieldKind::Hour => (0, 23),
            FieldKind::Minute | FieldKind::Second => (0, 59),
        }
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
/// Weekday names, Monday first: the index is chrono's `num_days_from_monday`.
pub(crate) const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A parsed field: the set of matching values plus the day-of-month extras.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    /// Matching values as bits (bit v = value v). Years use bit `v - 1970`; days of week use
    /// Monday-based bits 0..=6.
    pub bits: Vec<u64>,
    /// Whether the expression covers the whole range (`*`), so the field never constrains.
    pub all: bool,
    /// Day field: `last` (last day of the month) was given.
    pub last_day: bool,
    /// Day field: `Nth weekday` entries as (n, Monday-based weekday); n = 0 means `last <weekday>`.
    pub positions: Vec<(u8, u8)>,
    /// Some expression was `*` or used a step: for the hour field this makes a cron "rhythmic".
    pub stepped: bool,
}

impl FieldSet {
    fn with_capacity(kind: FieldKind) -> FieldSet {
        let words = match kind {
            FieldKind::Year => (9999 - 1970) / 64 + 1,
            _ => 1,
        };
        FieldSet {
            bits: vec![0; words],
            ..FieldSet::default()
        }
    }

    fn insert(&mut self, bit: u32) {
        self.bits[(bit / 64) as usize] |= 1u64 << (bit % 64);
    }

    /// The single-word bit mask (all fields but year fit in one word).
    pub fn word(&self) -> u64 {
        self.bits[0]
    }

    /// True when nothing at all can match (only possible for none of the accepted inputs, kept as a guard).
    pub fn is_empty(&self) -> bool {
        !self.all && self.bits.iter().all(|w| *w == 0) && !self.last_day && self.positions.is_empty()
    }
}

/// Parses one field's text. The error message does not repeat the field name or the whole
/// value: the caller puts both into the `TriggerError`.
pub(crate) fn parse_field(kind: FieldKind, text: &str) -> Result<FieldSet, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the expression is empty".to_string());
    }
    let mut set = FieldSet::with_capacity(kind);
    for piece in text.split(',') {
        let piece = piece.trim_matches(' ');
        if piece.is_empty() {
            return Err("empty list element (two commas in a row, or a trailing comma)".to_string());
        }
        parse_piece(kind, piece, &mut set).map_err(|msg| {
            msg.strip_prefix(&format!("{text:?}: "))
                .map(str::to_string)
                .unwrap_or(msg)
        })?;
    }
    if set.is_empty() {
        return Err("the expression matches no value".to_string());
    }
    Ok(set)
}

fn parse_piece(kind: FieldKind, piece: &str, set: &mut FieldSet) -> Result<(), String> {
    if piece.contains('#') {
        return Err(format!(
            "{piece:?}: the #-syntax is not supported; write the weekday position in the day field, e.g. day: \"2nd mon\""
        ));
    }
    let (body, step) = split_step(piece)?;

    if body == "*" {
        return every_value(kind, piece, step, set);
    }
    set.stepped |= step.is_some();

    if kind == FieldKind::Day && parse_day_special(body, step, set)? {
        return Ok(());
    }

    let (first, last) = match body.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (body, None),
    };
    if first.is_empty() && is_digits(body.trim_start_matches('-')) {
        return Err(format!("{piece:?}: negative values are not allowed"));
    }
    if first.is_empty() || last == Some("") {
        return Err(format!("{piece:?}: a range needs a value on both sides of '-'"));
    }

    if is_digits(first) && last.is_none_or(is_digits) {
        let span = Span {
            a: parse_number(first)?,
            b: last.map(parse_number).transpose()?,
            step,
        };
        return match kind {
            FieldKind::DayOfWeek => crontab_weekdays(piece, span, set),
            _ => numeric_range(kind, piece, span, set),
        };
    }

    match kind {
        FieldKind::Month => {
            let span = named_span(&MONTHS, "month", first, last, step)?;
            numeric_range(kind, piece, span, set)
        }
        // Names are Monday-based; through the crontab path they are the numbers 1..=7.
        FieldKind::DayOfWeek => {
            let span = named_span(&WEEKDAYS, "weekday", first, last, step)?;
            crontab_weekdays(piece, span, set)
        }
        _ => Err(unrecognized(kind, piece)),
    }
}

/// A piece's values as numbers: `a`, `a-b`, `a/step` or `a-b/step`.
#[derive(Clone, Copy, Debug)]
struct Span {
    a: u32,
    b: Option<u32>,
    step: Option<u32>,
}

impl Span {
    /// The last value: `a/step` runs from a to the field maximum `max`, as in APScheduler and
    /// crontab.
    fn end(self, max: u32) -> u32 {
        match (self.b, self.step) {
            (Some(b), _) => b,
            (None, Some(_)) => max,
            (None, None) => self.a,
        }
    }
}

/// The span of a range of names: each name's position in `names`, counted from 1; `what`
/// names the field in the error.
fn named_span(
    names: &[&str],
    what: &str,
    first: &str,
    last: Option<&str>,
    step: Option<u32>,
) -> Result<Span, String> {
    let number = |name: &str| {
        name_index(names, name)
            .map(|i| i as u32 + 1)
            .ok_or_else(|| format!("unknown {what} {name:?}"))
    };
    Ok(Span {
        a: number(first)?,
        b: last.map(number).transpose()?,
        step,
    })
}

/// `*` or `*/n`: every value of the field, or every n-th. APScheduler counts a `*/n` step from
/// the field minimum; day of week steps over the Monday-based index (`*/2` = mon,wed,fri,sun).
fn every_value(kind: FieldKind, piece: &str, step: Option<u32>, set: &mut FieldSet) -> Result<(), String> {
    let (min, max) = kind.range();
    let step = step.unwrap_or(1);
    if kind == FieldKind::DayOfWeek {
        if step > 7 {
            return Err(format!(
                "{piece:?}: step {step} is larger than the 7 days of the week"
            ));
        }
        for d in (0..7).step_by(step as usize) {
            set.insert(d);
        }
    } else {
        if step > max - min {
            return Err(format!(
                "{piece:?}: step {step} is larger than the range {min}-{max} it steps through"
            ));
        }
        // A plain `*` year never constrains; skip filling its 8030 bits.
        if !(kind == FieldKind::Year && step == 1) {
            for v in (min..=max).step_by(step as usize) {
                insert_value(kind, set, v);
            }
        }
    }
    set.all |= step == 1;
    set.stepped = true;
    Ok(())
}

fn unrecognized(kind: FieldKind, piece: &str) -> String {
    let hint = match kind {
        FieldKind::Day => {
            "; expected a number 1-31, a range like 1-15, a step like */2, \"last\", \"last fri\" or \"2nd mon\""
        }
        FieldKind::Month => "; expected 1-12, jan-dec, a range or a step",
        FieldKind::DayOfWeek => "; expected 0-7 (0 and 7 = Sunday), mon-sun, a range or a step",
        _ => "; expected a number, a range like 1-5, * or a step like */5",
    };
    let lower = piece.to_ascii_lowercase();
    if lower == "?" || lower.ends_with('l') || lower.ends_with('w') {
        return format!("unsupported expression {piece:?} (L, W and ? are not APScheduler syntax){hint}");
    }
    format!("unrecognized expression {piece:?}{hint}")
}

/// Splits `body/step`; a step must be a positive number.
fn split_step(piece: &str) -> Result<(&str, Option<u32>), String> {
    match piece.split_once('/') {
        None => Ok((piece, None)),
        Some((body, step)) => {
            if !is_digits(step) {
                return Err(format!("{piece:?}: the step after '/' must be a positive number"));
            }
            let step = parse_number(step)?;
            if step == 0 {
                return Err(format!("{piece:?}: the step must be positive"));
            }
            if body.is_empty() {
                return Err(format!("{piece:?}: nothing before the '/' step"));
            }
            Ok((body, Some(step)))
        }
    }
}

/// `last`, `last fri`, `1st mon` .. `5th sun`. Returns false when the piece is none of these.
fn parse_day_special(body: &str, step: Option<u32>, set: &mut FieldSet) -> Result<bool, String> {
    let mut words = body.split(' ').filter(|w| !w.is_empty());
    let Some(head) = words.next() else {
        return Ok(false);
    };
    let n = match head.to_ascii_lowercase().as_str() {
        "last" => 0,
        "1st" => 1,
        "2nd" => 2,
        "3rd" => 3,
        "4th" => 4,
        "5th" => 5,
        lower if lower.starts_with("last") => {
            return Err(format!(
                "unrecognized expression {body:?}; did you mean \"last\"?"
            ));
        }
        _ => return Ok(false),
    };
    let weekday = words.next();
    if words.next().is_some() {
        return Err(format!("{body:?}: expected \"{head} <weekday>\""));
    }
    if step.is_some() {
        return Err(format!("{body:?}: a step cannot follow \"{head}\""));
    }
    match weekday {
        None if n == 0 => set.last_day = true,
        None => {
            return Err(format!(
                "{body:?}: \"{head}\" needs a weekday, e.g. \"{head} mon\""
            ));
        }
        Some(w) => {
            let wd = name_index(&WEEKDAYS, w)
                .ok_or_else(|| format!("{body:?}: invalid weekday name {w:?} (use mon..sun)"))?;
            set.positions.push((n, wd as u8));
        }
    }
    Ok(true)
}

fn numeric_range(kind: FieldKind, piece: &str, span: Span, set: &mut FieldSet) -> Result<(), String> {
    let (min, max) = kind.range();
    let Span { a, step, .. } = span;
    let last = span.end(max);
    for v in [a, last] {
        if v < min || v > max {
            return Err(format!("{piece:?}: value {v} is out of range {min}-{max}"));
        }
    }
    if a > last {
        return Err(format!(
            "{piece:?}: the range starts at {a}, after its end {last}"
        ));
    }
    let step = step.unwrap_or(1);
    if step > 1 && step > last - a {
        return Err(format!(
            "{piece:?}: step {step} is larger than the range {a}-{last} it steps through"
        ));
    }
    for v in (a..=last).step_by(step as usize) {
        insert_value(kind, set, v);
    }
    Ok(())
}

/// Day of week in crontab numbering (0 and 7 = Sunday, 1 = Monday). Ranges may wrap around
/// the week (`5-1` = fri..mon) as APScheduler allows; steps are honoured (`1-5/2` = mon,wed,fri)
/// and `0-7` is every day, where APScheduler would drop the step or read Sunday only.
fn crontab_weekdays(piece: &str, span: Span, set: &mut FieldSet) -> Result<(), String> {
    let Span { a, b, step } = span;
    for v in [Some(a), b].into_iter().flatten() {
        if v > 7 {
            return Err(format!(
                "{piece:?}: day of week {v} is out of range 0-7 (0 and 7 = Sunday)"
            ));
        }
    }
    let last = span.end(7);
    // The walk goes up from a to last; a wrapping range continues through Sunday.
    let span = if a <= last { last - a } else { last + 7 - a };
    let step = step.unwrap_or(1);
    if step > 1 && step > span {
        return Err(format!(
            "{piece:?}: step {step} is larger than the range it steps through"
        ));
    }
    let mut k = 0;
    while k <= span {
        let crontab = (a + k) % 7; // 0 = Sunday
        set.insert((crontab + 6) % 7); // Monday-based bit
        k += step;
    }
    if set.word() & 0x7f == 0x7f {
        set.all = true;
    }
    Ok(())
}

fn insert_value(kind: FieldKind, set: &mut FieldSet, v: u32) {
    match kind {
        FieldKind::Year => set.insert(v - 1970),
        _ => set.insert(v),
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_number(s: &str) -> Result<u32, String> {
    s.parse::<u32>().map_err(|_| format!("number {s:?} is too large"))
}

fn name_index(names: &[&str], s: &str) -> Option<usize> {
    names.iter().position(|n| n.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(kind: FieldKind, text: &str) -> Vec<u32> {
        let set = parse_field(kind, text).unwrap();
        (0..64).filter(|b| set.word() & (1 << b) != 0).collect()
    }

    #[test]
    fn numeric_expressions_match_apscheduler() {
        let cases: &[(FieldKind, &str, &[u32])] = &[
            (FieldKind::Hour, "5/2", &[5, 7, 9, 11, 13, 15, 17, 19, 21, 23]),
            (FieldKind::Day, "*/10", &[1, 11, 21, 31]),
            (FieldKind::Minute, "0-59/59", &[0, 59]),
            (FieldKind::Hour, "*/23", &[0, 23]),
            (FieldKind::Minute, " 1 , 2,3 ", &[1, 2, 3]),
            (FieldKind::Month, "jan-mar", &[1, 2, 3]),
            (FieldKind::Month, "JAN,dec", &[1, 12]),
            (FieldKind::Month, "jan-dec/3", &[1, 4, 7, 10]),
            (FieldKind::Second, "05", &[5]),
        ];
        for (kind, text, want) in cases {
            assert_eq!(values(*kind, text), *want, "{kind:?} {text}");
        }
    }

    #[test]
    fn weekdays_use_crontab_numbers_with_steps_honoured() {
        // Monday-based bits: mon=0 .. sun=6.
        let cases: &[(&str, &[u32])] = &[
            ("0", &[6]),
            ("7", &[6]),
            ("1-5", &[0, 1, 2, 3, 4]),
            ("1-5/2", &[0, 2, 4]),
            ("0-7", &[0, 1, 2, 3, 4, 5, 6]),
            ("7-1", &[0, 6]),
            ("1/2", &[0, 2, 4, 6]),
            ("*/2", &[0, 2, 4, 6]),
            ("*/3", &[0, 3, 6]),
            ("*/7", &[0]),
            ("mon-fri", &[0, 1, 2, 3, 4]),
            ("mon-fri/2", &[0, 2, 4]),
            ("sat-mon", &[0, 5, 6]),
            ("sun,sat", &[5, 6]),
        ];
        for (text, want) in cases {
            assert_eq!(values(FieldKind::DayOfWeek, text), *want, "{text}");
        }
    }

    #[test]
    fn day_specials() {
        let set = parse_field(FieldKind::Day, "last, 2nd mon,last  fri,15").unwrap();
        assert!(set.last_day);
        assert_eq!(set.positions, vec![(2, 0), (0, 4)]);
        assert_eq!(set.word(), 1 << 15);
    }

    #[test]
    fn rejects_what_apscheduler_misreads_or_rejects() {
        let cases: &[(FieldKind, &str, &str)] = &[
            (FieldKind::Minute, "*/60", "step 60"),
            (FieldKind::Hour, "*/24", "step 24"),
            (FieldKind::Day, "*/31", "step 31"),
            (FieldKind::Day, "4-6/3", "step 3"),
            (FieldKind::Minute, "59/2", "step 2"),
            (FieldKind::Minute, "60", "out of range"),
            (FieldKind::Hour, "5-3", "after its end"),
            (FieldKind::DayOfWeek, "8", "out of range 0-7"),
            (FieldKind::DayOfWeek, "mon#2", "#-syntax"),
            (FieldKind::DayOfWeek, "mon-fry", "unknown weekday \"fry\""),
            (FieldKind::Month, "jan/x", "step"),
            (FieldKind::Month, "janx", "unknown month"),
            (FieldKind::Day, "lastx", "did you mean"),
            (FieldKind::Day, "last/2", "a step cannot follow"),
            (FieldKind::Day, "2nd 1", "invalid weekday"),
            (FieldKind::Day, "L", "not APScheduler syntax"),
            (FieldKind::Day, "15W", "not APScheduler syntax"),
            (FieldKind::Minute, "", "empty"),
            (FieldKind::Minute, "1,,2", "empty list element"),
            (FieldKind::Minute, "-5", "negative"),
            (FieldKind::Minute, "5-", "both sides"),
            (FieldKind::Minute, "99999999999", "too large"),
            (FieldKind::Hour, "mon", "unrecognized"),
            (FieldKind::Minute, "*/0", "positive"),
            (FieldKind::Year, "1969", "out of range"),
        ];
        for (kind, text, want) in cases {
            let err = parse_field(*kind, text).unwrap_err();
            assert!(err.contains(want), "{kind:?} {text:?}: {err}");
        }
    }
}
