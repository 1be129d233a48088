use super::*;

/// (input, what `mask` makes of it).
const CASES: &[(&str, &str)] = &[
    // ARNs as a word, inside quotes, parentheses, JSON, a word, a URL.
    (
        "Value 'arn:aws:bedrock:us-east-1:123456789012:foo/bar' at 'modelId'",
        "Value 'arn:aws:bedrock:us-east-1:<account>:foo/bar' at 'modelId'",
    ),
    ("(arn:aws:iam::123456789012:role/gw)", "(arn:aws:iam::<account>:role/gw)"),
    (
        r#"{"resource":"arn:aws:bedrock:us-west-2:123456789012:provisioned-model/abc"}"#,
        r#"{"resource":"arn:aws:bedrock:us-west-2:<account>:provisioned-model/abc"}"#,
    ),
    (
        "User:arn:aws:sts::123456789012:assumed-role/gw/i-0abc is not authorized",
        "User:arn:aws:sts::<account>:assumed-role/gw/i-0abc is not authorized",
    ),
    (
        "resourcearn:aws-us-gov:bedrock:us-gov-west-1:210987654321:inference-profile/x",
        "resourcearn:aws-us-gov:bedrock:us-gov-west-1:<account>:inference-profile/x",
    ),
    ("ARN:AWS:BEDROCK:US-EAST-1:123456789012:X", "ARN:AWS:BEDROCK:US-EAST-1:<account>:X"),
    // An account field that is not 12 digits, or cut off, is masked all the same.
    ("arn:aws:bedrock:us-east-1:1234-5678-9012:x", "arn:aws:bedrock:us-east-1:<account>:x"),
    ("arn:aws:bedrock:us-east-1:1234567", "arn:aws:bedrock:us-east-1:<account>"),
    // AWS-owned and account-less ARNs stay as they are.
    (
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1",
    ),
    ("arn:aws:iam::aws:policy/ReadOnly", "arn:aws:iam::aws:policy/ReadOnly"),
    ("arn:aws:s3:::bucket.name/key", "arn:aws:s3:::bucket.name/key"),
    // Account ids outside an ARN: any run of exactly 12 digits.
    ("account 123456789012 has no access", "account <account> has no access"),
    ("acct123456789012x", "acct<account>x"),
    (
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fab",
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A<account>%3Aapplication-inference-profile%2Fab",
    ),
    ("1234567890123 and 12345678901 are not", "1234567890123 and 12345678901 are not"),
    // Access key ids.
    (
        "Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/bedrock",
        "Credential=<access-key>/20240101/us-east-1/bedrock",
    ),
    ("key ASIAY34FZKBOKMUTVV7A expired", "key <access-key> expired"),
    ("AKIA is a prefix, AKIASHORT too", "AKIA is a prefix, AKIASHORT too"),
    // Internal IPv4 addresses, with and without a port; public ones stay.
    ("connect to 10.0.0.7:443 refused", "connect to <internal-address>:443 refused"),
    (
        "from 172.16.4.2, 172.32.0.1 and 8.8.8.8.",
        "from <internal-address>, 172.32.0.1 and 8.8.8.8.",
    ),
    ("http://192.168.1.10/x", "http://<internal-address>/x"),
    ("IMDS at 169.254.169.254 timed out", "IMDS at <internal-address> timed out"),
    (
        "loopback 127.0.0.1; shared 100.64.1.1",
        "loopback <internal-address>; shared <internal-address>",
    ),
    ("version 1.2.3.4.5 and 3.14", "version 1.2.3.4.5 and 3.14"),
    // Internal IPv6 addresses.
    ("[fd12:3456:789a::1]:8080", "[<internal-address>]:8080"),
    ("via fe80::1%eth0 and ::1.", "via <internal-address>%eth0 and <internal-address>."),
    ("mapped ::ffff:10.1.2.3", "mapped ::ffff:<internal-address>"),
    ("public 2600:1f18::1 stays", "public 2600:1f18::1 stays"),
    ("std::io::Error", "std::io::Error"),
    // Internal host names.
    (
        "dns error: ip-10-0-0-7.ec2.internal: no such host",
        "dns error: <internal-host>: no such host",
    ),
    ("redis://redis.default.svc:6379", "redis://<internal-host>:6379"),
    ("at http://localhost:9000/.", "at http://<internal-host>:9000/."),
    ("printer.local.", "<internal-host>."),
    ("bedrock-runtime.us-east-1.amazonaws.com", "bedrock-runtime.us-east-1.amazonaws.com"),
    ("the word internal alone", "the word internal alone"),
    // Unicode around the patterns is kept whole.
    ("é10.0.0.1é arn:aws:x:y:123456789012:ü", "é<internal-address>é arn:aws:x:y:<account>:ü"),
];

#[test]
fn every_case_is_masked_as_written() {
    let mut wrong = Vec::new();
    for (input, expected) in CASES {
        let masked = mask(input);
        if masked != *expected {
            wrong.push(format!("{input:?}\n   gave {masked:?}\n   want {expected:?}"));
        }
        // Idempotent: masking again changes nothing.
        assert_eq!(mask(&masked), masked, "masking {masked:?} again");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn long_messages_are_cut_with_a_marker_once() {
    let short = "x".repeat(MAX_MESSAGE_BYTES);
    assert_eq!(bounded(&short), short.as_str());
    let long = "é".repeat(MAX_MESSAGE_BYTES);
    let cut = bounded(&long).into_owned();
    assert!(cut.len() <= MAX_MESSAGE_BYTES && cut.ends_with(TRUNCATED_MARKER), "{}", cut.len());
    assert!(cut.len() > MAX_MESSAGE_BYTES - TRUNCATED_MARKER.len() - 4);
    assert_eq!(bounded(&cut), cut.as_str(), "bounding twice adds nothing");
    let public_twice = public(&public(&long));
    assert_eq!(public_twice, public(&long));
}

#[test]
fn a_huge_message_is_masked_in_its_kept_part_and_cut() {
    // 20 MB of a Bedrock message echoing the caller's body, an ARN near the start.
    let mut text = "Malformed input: arn:aws:bedrock:us-east-1:123456789012:x ".to_owned();
    while text.len() < 20_000_000 {
        text.push_str("user data 10.0.0.1 123456789012 ");
    }
    let shown = public(&text);
    assert!(shown.len() <= MAX_MESSAGE_BYTES && shown.ends_with(TRUNCATED_MARKER));
    assert!(!shown.contains("123456789012") && !shown.contains("10.0.0.1"), "{shown}");
    assert!(shown.contains("arn:aws:bedrock:us-east-1:<account>:x"));
}

/// A small deterministic generator (xorshift64*), so that the property test needs no
/// crate and every run checks the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Property: whatever surrounds an ARN (prose, quotes, brackets, JSON, another word, an
/// escape), its 12-digit account id does not survive `public`, and `public` is
/// idempotent.
#[test]
fn no_account_id_of_an_arn_survives() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let before =
        ["", " ", "'", "\"", "(", "[", "{\"arn\":\"", "word", "x:", "=", "\\\"", "é", "\n"];
    let after = ["", " ", "'", "\"", ")", "]", "\"}", ",", ".", ":x", "é", "0"];
    let partitions = ["aws", "aws-cn", "aws-us-gov", "AWS"];
    let services = ["bedrock", "iam", "sts", "s3", "lambda"];
    let regions = ["", "us-east-1", "eu-west-3", "ap-southeast-2"];
    let resources = [
        "",
        ":provisioned-model/abcdefghijkl",
        ":application-inference-profile/x1y2",
        ":role/gw",
        "/path",
        ":root",
    ];
    let fillers = ["", "Malformed input ", "10.0.0.7 ", "AKIAIOSFODNN7EXAMPLE ", "ü "];
    for _ in 0..10_000 {
        let account: String = (0..12).map(|_| char::from(b'0' + rng.below(10) as u8)).collect();
        let arn = format!(
            "arn:{}:{}:{}:{account}{}",
            rng.pick(&partitions),
            rng.pick(&services),
            rng.pick(&regions),
            rng.pick(&resources)
        );
        let mut input = String::new();
        for _ in 0..1 + rng.below(3) {
            input.push_str(rng.pick(&fillers));
            input.push_str(rng.pick(&before));
            input.push_str(&arn);
            input.push_str(rng.pick(&after));
        }
        let shown = public(&input);
        assert!(!shown.contains(&account), "{account} survived in {shown:?} (from {input:?})");
        assert_eq!(public(&shown), shown, "not idempotent on {input:?}");
    }
}
