//! What must not leave the gateway in an error message or a listing, masked in one
//! place: AWS account ids (the account field of any ARN, and any other run of exactly 12
//! digits), AWS access key ids, and internal addresses (private, loopback, link-local and
//! shared IPv4 ranges; unique-local, link-local and loopback IPv6; host names under
//! internal suffixes such as `.internal`); and the bound on a message's size.
//!
//! [`public`] is what every API shape's error encoding applies to every message it sends
//! (the gateway's, OpenAI's, the Bedrock passthrough's bodies and exception frames), and
//! [`mask`] what `GET /v1/models` applies to model ids. The logs keep messages unmasked
//! for the operator, bounded where they enter (`upstream.rs`). Both functions are
//! idempotent: a message already masked and bounded comes back as it is, so two layers
//! applying them cannot disagree.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The longest message sent to a caller, in bytes, the marker included. Above the bound
/// `upstream.rs` puts on Bedrock's messages where they enter, so that those pass on
/// whole (with that bound's own note) and this one holds for every other message.
pub const MAX_MESSAGE_BYTES: usize = 8192;

/// Ends a message cut at [`MAX_MESSAGE_BYTES`].
pub const TRUNCATED_MARKER: &str = " …[truncated]";

/// What an account id (or an ARN's account field) becomes.
pub const ACCOUNT_MASK: &str = "<account>";
/// What an access key id becomes.
pub const ACCESS_KEY_MASK: &str = "<access-key>";
/// What an internal IP address becomes.
pub const ADDRESS_MASK: &str = "<internal-address>";
/// What an internal host name becomes.
pub const HOST_MASK: &str = "<internal-host>";

/// How much of a message [`mask`] reads and keeps at all: far more than [`bounded`]
/// keeps, so that what a caller sees is the message's start even where masks are shorter
/// than what they replaced; the rest is dropped unread, never passed on unmasked.
const MASKED_PREFIX_BYTES: usize = 64 * MAX_MESSAGE_BYTES;

/// The four-letter prefixes of AWS access key ids and other IAM unique ids.
const KEY_ID_PREFIXES: [&str; 11] =
    ["AKIA", "ASIA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "AGPA", "APKA", "ABIA", "ACCA"];

/// Host name suffixes that only resolve inside a network (EC2's `ec2.internal`, mDNS,
/// Kubernetes services, RFC 8375).
const INTERNAL_HOST_SUFFIXES: [&str; 8] =
    [".internal", ".local", ".localdomain", ".lan", ".intranet", ".corp", ".home.arpa", ".svc"];

/// `text` as a caller may see it: masked, then bounded.
pub fn public(text: &str) -> String {
    bounded(&mask(text)).into_owned()
}

/// `text` cut to [`MAX_MESSAGE_BYTES`] (on a character boundary) with
/// [`TRUNCATED_MARKER`] at the end; as it is when it fits.
pub fn bounded(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_MESSAGE_BYTES {
        return Cow::Borrowed(text);
    }
    let kept = floor_char_boundary(text, MAX_MESSAGE_BYTES - TRUNCATED_MARKER.len());
    Cow::Owned(format!("{}{TRUNCATED_MARKER}", &text[..kept]))
}

/// Every account id, access key id and internal address in `text` masked. Only the
/// first [`MASKED_PREFIX_BYTES`] are kept (without the word cut there), so that masking
/// a huge message costs no more than a bounded one.
pub fn mask(text: &str) -> String {
    let text = if text.len() > MASKED_PREFIX_BYTES {
        let head = &text[..floor_char_boundary(text, MASKED_PREFIX_BYTES)];
        // A word cut in two might no longer be recognised: drop its first half too.
        head.trim_end_matches(|c: char| !c.is_whitespace())
    } else {
        text
    };
    let text = mask_arn_accounts(text);
    let text = mask_key_ids(&text);
    let text = mask_account_numbers(&text);
    let text = mask_ipv4(&text);
    let text = mask_ipv6(&text);
    mask_hosts(&text)
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT…`, wherever it starts (inside a word, a quoted
/// string, a JSON value): the account field, its digits (and dashes, as people write
/// them) up to whatever follows, becomes [`ACCOUNT_MASK`]; an empty one or `aws`
/// (AWS-owned resources) has none. Only digits, so that the field cannot run into the
/// `arn:` of an ARN right after it.
fn mask_arn_accounts(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = find_ignore_case(&bytes[at..], b"arn:") {
        let start = at + found;
        at = start + 4;
        let Some(account) = arn_account_field(bytes, at) else {
            continue;
        };
        if text[account.clone()].bytes().any(|b| b.is_ascii_digit()) {
            out.push_str(&text[copied..account.start]);
            out.push_str(ACCOUNT_MASK);
            copied = account.end;
        }
        at = account.end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The byte range of the account field of an ARN whose `arn:` ends at `at`: after a
/// partition, a service and a region (each of letters, digits and `-`, the region
/// possibly empty), each followed by `:`.
fn arn_account_field(bytes: &[u8], mut at: usize) -> Option<std::ops::Range<usize>> {
    let is_part = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
    for min_len in [1, 1, 0] {
        let len = bytes[at..].iter().take_while(|b| is_part(**b)).count();
        if len < min_len || bytes.get(at + len) != Some(&b':') {
            return None;
        }
        at += len + 1;
    }
    let len = bytes[at..].iter().take_while(|b| b.is_ascii_digit() || **b == b'-').count();
    Some(at..at + len)
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window.eq_ignore_ascii_case(needle))
}

/// Access key ids (`AKIA…`, `ASIA…`) and the other IAM unique ids: a known prefix and
/// 12 to 28 more capital letters and digits, the run ending there.
fn mask_key_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_key_char = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let prefixed =
            KEY_ID_PREFIXES.iter().any(|prefix| bytes[at..].starts_with(prefix.as_bytes()));
        if !prefixed {
            at += 1;
            continue;
        }
        let run = bytes[at + 4..].iter().take_while(|b| is_key_char(b)).count();
        if (12..=28).contains(&run) {
            out.push_str(&text[copied..at]);
            out.push_str(ACCESS_KEY_MASK);
            copied = at + 4 + run;
            at = copied;
        } else {
            at += 4 + run;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Every maximal run of exactly 12 ASCII digits: the shape of an account id, whatever
/// surrounds it (an ARN the other rules did not recognise, a percent-encoded one, prose).
fn mask_account_numbers(text: &str) -> String {
    replace_runs(
        text,
        |b| b.is_ascii_digit(),
        |run| (run.len() == 12).then_some((0..run.len(), ACCOUNT_MASK)),
    )
}

/// IPv4 addresses in the private, loopback, link-local, shared (CGNAT) and "this network"
/// ranges (a port after one stays). Public addresses stay: they are no secret.
fn mask_ipv4(text: &str) -> String {
    replace_runs(
        text,
        |b| b.is_ascii_digit() || b == b'.',
        |run| {
            let start = run.len() - run.trim_start_matches('.').len();
            let address = run.trim_matches('.');
            let internal = address.parse::<Ipv4Addr>().is_ok_and(is_internal_v4);
            internal.then_some((start..start + address.len(), ADDRESS_MASK))
        },
    )
}

/// IPv6 addresses that are unique-local, link-local or loopback, also in brackets, with
/// a zone (`%eth0`'s letters end the run, which is then the address) or IPv4-mapped.
fn mask_ipv6(text: &str) -> String {
    replace_runs(
        text,
        |b| b.is_ascii_hexdigit() || b == b':' || b == b'.',
        |run| {
            if run.bytes().filter(|b| *b == b':').count() < 2 {
                return None;
            }
            // The run as it is (`::1`), or without the punctuation of the prose around it.
            let start = run.len() - run.trim_start_matches(['.', ':']).len();
            let trimmed_end = run.trim_end_matches(['.', ':']).len();
            let trimmed_end_only = &run[..trimmed_end];
            let candidates =
                [(0, trimmed_end_only), (start, &run[start.min(trimmed_end)..trimmed_end])];
            candidates.into_iter().find_map(|(at, address)| {
                let internal = address.parse::<Ipv6Addr>().is_ok_and(is_internal_v6);
                internal.then_some((at..at + address.len(), ADDRESS_MASK))
            })
        },
    )
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || ip.to_ipv4_mapped().is_some_and(is_internal_v4)
}

/// Host names under [`INTERNAL_HOST_SUFFIXES`], and `localhost`.
fn mask_hosts(text: &str) -> String {
    replace_runs(
        text,
        |b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.',
        |run| {
            let start = run.len() - run.trim_start_matches(['.', '-']).len();
            let name = run.trim_matches(['.', '-']);
            let lower = name.to_ascii_lowercase();
            let internal = lower == "localhost"
                || INTERNAL_HOST_SUFFIXES
                    .iter()
                    .any(|suffix| lower.ends_with(suffix) && lower.len() > suffix.len());
            internal.then_some((start..start + name.len(), HOST_MASK))
        },
    )
}

/// `text` with a part of every maximal run of bytes for which `in_run` holds replaced,
/// where `replacement` names one: the range within the run and its mask. Runs are of
/// ASCII bytes, so they and their parts are always whole characters.
fn replace_runs(
    text: &str,
    in_run: impl Fn(u8) -> bool,
    replacement: impl Fn(&str) -> Option<(std::ops::Range<usize>, &'static str)>,
) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        if !in_run(bytes[at]) {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && in_run(bytes[at]) {
            at += 1;
        }
        if let Some((range, mask)) = replacement(&text[start..at]) {
            out.push_str(&text[copied..start + range.start]);
            out.push_str(mask);
            copied = start + range.end;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests;
