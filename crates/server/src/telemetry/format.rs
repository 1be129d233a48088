//! The log line formats: [`JsonLines`] (one JSON object per event) and [`HumanLines`]
//! (`timestamp LEVEL target: message key=value … span{key=value …}`), with their span
//! field formatters.
//!
//! Ours rather than tracing-subscriber's own: its JSON format serializes every value
//! through serde_json into an adaptor that checks UTF-8 piece by piece, which cost about
//! four times the instructions of writing the same line directly (measured with
//! callgrind, `docs/metrics.md` §"Cost"). The request line has twenty fields and comes
//! once a request, so this is on the hot path.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// One JSON object a line: `timestamp`, `level`, `target`, the event's fields (the
/// message as `message`), and the current span as `"span":{"name":…,<its fields>}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

/// The fields of a span, for [`JsonLines`]: `"key":value` pairs joined by commas.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonFields;

/// `2026-12-01T12:13:12.522582Z  INFO target: message key=value … span{key=value …}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HumanLines;

/// The fields of a span, for [`HumanLines`]: `key=value` pairs joined by spaces.
#[derive(Debug, Clone, Copy, Default)]
pub struct HumanFields;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        // Targets and field names are Rust paths and identifiers: nothing to escape.
        writer.write_str("\",\"target\":\"")?;
        writer.write_str(meta.target())?;
        writer.write_char('"')?;
        let mut visitor = JsonVisitor { out: &mut writer, first: false, result: Ok(()) };
        event.record(&mut visitor);
        visitor.result?;
        if let Some(span) = ctx.lookup_current() {
            writer.write_str(",\"span\":{\"name\":\"")?;
            writer.write_str(span.name())?;
            writer.write_char('"')?;
            let extensions = span.extensions();
            if let Some(fields) = extensions.get::<FormattedFields<N>>()
                && !fields.fields.is_empty()
            {
                writer.write_char(',')?;
                writer.write_str(&fields.fields)?;
            }
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

impl<'w> FormatFields<'w> for JsonFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = JsonVisitor { out: &mut writer, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let first = current.fields.is_empty();
        let mut writer = current.as_writer();
        let mut visitor = JsonVisitor { out: &mut writer, first, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

impl<S, N> FormatEvent<S, N> for HumanLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        SystemTime.format_time(&mut writer)?;
        let level = match *meta.level() {
            Level::ERROR => " ERROR ",
            Level::WARN => "  WARN ",
            Level::INFO => "  INFO ",
            Level::DEBUG => " DEBUG ",
            Level::TRACE => " TRACE ",
        };
        writer.write_str(level)?;
        writer.write_str(meta.target())?;
        writer.write_char(':')?;
        let mut visitor = HumanVisitor { out: &mut writer, result: Ok(()) };
        event.record(&mut visitor);
        visitor.result?;
        if let Some(span) = ctx.lookup_current() {
            writer.write_char(' ')?;
            writer.write_str(span.name())?;
            writer.write_char('{')?;
            let extensions = span.extensions();
            if let Some(fields) = extensions.get::<FormattedFields<N>>() {
                writer.write_str(fields.fields.trim_start())?;
            }
            writer.write_char('}')?;
        }
        writer.write_char('\n')
    }
}

impl<'w> FormatFields<'w> for HumanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = HumanVisitor { out: &mut writer, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes `"name":value` pairs.
struct JsonVisitor<'a, 'w> {
    out: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl JsonVisitor<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        let open = if std::mem::take(&mut self.first) { "\"" } else { ",\"" };
        self.out.write_str(open)?;
        self.out.write_str(field.name())?;
        self.out.write_str("\":")
    }

    fn put(&mut self, write: impl FnOnce(&mut Writer<'_>) -> fmt::Result, field: &Field) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| write(self.out));
        }
    }
}

impl Visit for JsonVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(|out| json_string(out, value), field);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(|out| out.write_str(if value { "true" } else { "false" }), field);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(|out| write!(out, "{value}"), field);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(|out| write!(out, "{value}"), field);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(|out| write_f64(out, value), field);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(
            |out| {
                out.write_char('"')?;
                write!(JsonEscaped(out), "{value:?}")?;
                out.write_char('"')
            },
            field,
        );
    }
}

/// Writes ` name=value` pairs (the message without its name).
struct HumanVisitor<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl HumanVisitor<'_, '_> {
    fn put(&mut self, field: &Field, write: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.out.write_char(' ')?;
            if field.name() != "message" {
                self.out.write_str(field.name())?;
                self.out.write_char('=')?;
            }
            write(self.out)
        })();
    }
}

impl Visit for HumanVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // The message as it is; other strings quoted, so that spaces cannot split them.
        if field.name() == "message" {
            self.put(field, |out| out.write_str(value));
        } else {
            self.put(field, |out| write!(out, "{value:?}"));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |out| write!(out, "{value:?}"));
    }
}

/// A JSON number with three decimals (the durations in milliseconds: to the
/// microsecond), written with integer arithmetic; `null` for what JSON cannot carry.
fn write_f64(out: &mut Writer<'_>, value: f64) -> fmt::Result {
    if !value.is_finite() {
        return out.write_str("null");
    }
    if value.abs() >= 1e15 {
        return write!(out, "{value}");
    }
    let thousandths = (value * 1000.0).round() as i64;
    let sign = if thousandths < 0 { "-" } else { "" };
    let abs = thousandths.unsigned_abs();
    write!(out, "{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// Bytes that need an escape inside a JSON string: `"`, `\` and the control characters.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// `text` as a JSON string, quotes included.
fn json_string(out: &mut Writer<'_>, text: &str) -> fmt::Result {
    out.write_char('"')?;
    JsonEscaped(out).write_str(text)?;
    out.write_char('"')
}

/// Escapes what it is given for the inside of a JSON string.
struct JsonEscaped<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for JsonEscaped<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let bytes = text.as_bytes();
        if !bytes.iter().any(|&byte| NEEDS_ESCAPE[usize::from(byte)]) {
            return self.0.write_str(text);
        }
        let mut start = 0;
        for (idx, &byte) in bytes.iter().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            // Only whole characters are split off: every byte matched is ASCII.
            self.0.write_str(&text[start..idx])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = idx + 1;
        }
        self.0.write_str(&text[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        json_string(&mut Writer::new(&mut out), text).unwrap();
        out
    }

    #[test]
    fn numbers_have_three_decimals() {
        let written = |value: f64| {
            let mut out = String::new();
            write_f64(&mut Writer::new(&mut out), value).unwrap();
            out
        };
        assert_eq!(written(59.018_764), "59.019");
        assert_eq!(written(0.0), "0.000");
        assert_eq!(written(-1.5), "-1.500");
        assert_eq!(written(f64::NAN), "null");
        assert_eq!(written(2e15), "2000000000000000");
    }

    #[test]
    fn strings_are_escaped_as_json_requires() {
        for text in ["plain", "quote \" and \\ back", "line\nbreak\ttab\r", "\u{1}\u{1f}", "é ☃ 🦀"]
        {
            let out = escaped(text);
            let parsed: String = serde_json::from_str(&out).unwrap();
            assert_eq!(parsed, text, "{out}");
            assert!(!out.contains('\n'), "{out}");
        }
    }
}
