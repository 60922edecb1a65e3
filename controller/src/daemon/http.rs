//! A small HTTP/1.1 server for the status page and the JSON API, hand-written for size.
//!
//! Strict limits: request head and body sizes, header count, concurrent connections, and a
//! deadline per connection (slow clients are cut off). One request per connection. Reading is
//! open; changing state needs `POST /api/mode` with a JSON body and the token as a bearer token,
//! which a cross-site form cannot send (no CSRF) and a GET never does.

use crate::json::{self, Value};

pub const MAX_HEAD: usize = 8 * 1024;
pub const MAX_BODY: usize = 1024;
pub const MAX_HEADERS: usize = 32;
/// Connections at a time: a newcomer replaces the oldest still sending a request (see
/// [`super::clients::Server::accept`]), a browser sends its request at once, and a client has
/// two seconds for it and five to be done.
pub const LIMITS: super::clients::Limits =
    super::clients::Limits { clients: 8, request: 2_000_000, total: 5_000_000 };

#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read: the status to answer with and a short reason.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

const fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// Reads a request from what has arrived so far: `Ok(None)` while more is needed.
pub fn parse(buffer: &[u8]) -> Result<Option<Request>, Refusal> {
    let Some(head_end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buffer.len() > MAX_HEAD {
            Err(refuse(431, "request head too large"))
        } else {
            Ok(None)
        };
    };
    if head_end > MAX_HEAD {
        return Err(refuse(431, "request head too large"));
    }
    let head = crate::text::utf8(&buffer[..head_end])
        .ok_or_else(|| refuse(400, "request head is not UTF-8"))?;
    let mut lines = crate::text::pair_separated(head, b"\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = crate::text::byte_separated(request_line, b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse(400, "malformed request line"));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(refuse(505, "only HTTP/1.1"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(refuse(400, "malformed method"));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b.is_ascii_control()) {
        return Err(refuse(400, "malformed target"));
    }
    let path = crate::text::split_byte(target, b'?').map_or(target, |(path, _)| path).to_string();
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() == MAX_HEADERS {
            return Err(refuse(431, "too many headers"));
        }
        let (name, value) =
            crate::text::split_byte(line, b':').ok_or(refuse(400, "malformed header"))?;
        if name.is_empty() || name.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(refuse(400, "malformed header name"));
        }
        headers.push((name.to_string(), value.trim_ascii().to_string()));
    }
    let request = Request { method: method.to_string(), path, headers, body: Vec::new() };
    if request.header("transfer-encoding").is_some() {
        return Err(refuse(501, "chunked bodies are not accepted"));
    }
    // A second Host or Content-Length is how requests get smuggled past a proxy: refused.
    for name in ["host", "content-length"] {
        if request.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).count() > 1 {
            return Err(refuse(400, "a header that may appear once appears twice"));
        }
    }
    let length = match request.header("content-length") {
        None => 0,
        // Digits only: `+5`, `5 5` and `0x5` are what `parse` would half-accept.
        Some(text)
            if !text.is_empty() && text.len() <= 7 && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            crate::text::decimal(text).map_or(usize::MAX, |n| n as usize)
        }
        Some(_) => return Err(refuse(400, "malformed content-length: expected decimal digits")),
    };
    if length > MAX_BODY {
        return Err(refuse(413, "body too large"));
    }
    let body_start = head_end + 4;
    if buffer.len() < body_start + length {
        return Ok(None);
    }
    Ok(Some(Request { body: buffer[body_start..body_start + length].to_vec(), ..request }))
}

/// What the API should do with a request, decided without touching the daemon.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Page,
    Status,
    Force(String),
    Auto,
    /// Answer at once with this status and message.
    Refuse(u16, String),
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for (i, byte) in a.iter().enumerate() {
        difference |= usize::from(byte ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    difference == 0
}

/// Whether a request is for this router: a `Host` that is an address (with or without a port),
/// one of `names` (the router's own, in any case, with or without a port), or none at all. A page
/// elsewhere that points a name of its own at the router (DNS rebinding) sends that name: it gets
/// nothing.
pub fn host_allowed(host: Option<&str>, names: &[String]) -> bool {
    let Some(host) = host else { return true };
    let host = without_final_dots(host);
    let bare = if let Some(rest) = host.strip_prefix('[') {
        return crate::text::split_byte(rest, b']').is_some_and(|(address, port)| {
            crate::address::ipv6(address).is_some()
                && (port.is_empty() || is_port(port.strip_prefix(':').unwrap_or("x")))
        });
    } else {
        match crate::text::split_port(host) {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    let bare = without_final_dots(bare);
    crate::address::ipv4(bare).is_some() || names.iter().any(|name| is_named(bare, name))
}

/// `text` without the dots that end a fully qualified name, as `trim_end_matches('.')` (whose
/// generic searcher costs more flash) leaves it.
fn without_final_dots(text: &str) -> &str {
    let end = text.bytes().rposition(|b| b != b'.').map_or(0, |last| last + 1);
    &text[..end]
}

/// The local domains a router's name is reached in: OpenWrt's `lan`, mDNS, RFC 8375's.
const LOCAL_DOMAINS: [&str; 5] = ["", ".lan", ".local", ".home.arpa", ".localdomain"];

/// `host` is `name`, or `name` in one of the local domains (in any case).
fn is_named(host: &str, name: &str) -> bool {
    host.len() >= name.len()
        && host.is_char_boundary(name.len())
        && host[..name.len()].eq_ignore_ascii_case(name)
        && LOCAL_DOMAINS.iter().any(|domain| host[name.len()..].eq_ignore_ascii_case(domain))
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Routes a request: which action, or which refusal with what message. `names` are the names
/// the router answers to (see [`host_allowed`]).
pub fn route(request: &Request, token: Option<&str>, names: &[String]) -> Action {
    if !host_allowed(request.header("host"), names) {
        let message = text!(
            "this page answers to the router's addresses and names, not to Host ",
            json::quoted(&json::shorten(request.header("host").unwrap_or_default())),
            "; add the name to web.hosts to use it"
        );
        return Action::Refuse(421, message);
    }
    match (request.method.as_str(), request.path.as_str()) {
        ("GET" | "HEAD", "/" | "/index.html") => Action::Page,
        ("GET" | "HEAD", "/api/status") => Action::Status,
        ("POST", "/api/mode") => mode_change(request, token),
        (_, "/api/mode") => {
            Action::Refuse(405, "changing the mode needs POST with a JSON body".into())
        }
        (_, "/" | "/index.html" | "/api/status") => {
            Action::Refuse(405, "method not allowed".into())
        }
        _ => Action::Refuse(404, "not found".into()),
    }
}

fn mode_change(request: &Request, token: Option<&str>) -> Action {
    let Some(token) = token else {
        return Action::Refuse(403, "this page is read-only: no web token is configured".into());
    };
    let given =
        request.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    if given.is_empty() {
        return Action::Refuse(401, "a token is needed to change the mode".into());
    }
    if !same_secret(given.as_bytes(), token.as_bytes()) {
        return Action::Refuse(403, "wrong token".into());
    }
    let json_body = request.header("content-type").is_some_and(|v| {
        crate::text::split_byte(v, b';').map_or(v, |(t, _)| t).trim_ascii() == "application/json"
    });
    if !json_body {
        return Action::Refuse(415, "expected a JSON body (Content-Type: application/json)".into());
    }
    let Some(text) = crate::text::utf8(&request.body) else {
        return Action::Refuse(400, "the body is not UTF-8".into());
    };
    let document = match json::parse(text) {
        Ok(document) => document,
        Err(e) => return Action::Refuse(400, text!("invalid JSON body: ", e)),
    };
    let Value::Object(members) = document.value else {
        return Action::Refuse(400, "expected a JSON object such as {\"mode\": \"auto\"}".into());
    };
    let field = |key: &str| members.iter().find(|(k, _)| k == key).map(|(_, v)| &v.value);
    if let Some((unknown, _)) = members.iter().find(|(k, _)| k != "mode" && k != "link") {
        return Action::Refuse(
            400,
            text!("unknown key ", json::quoted(unknown), ": expected \"mode\" and \"link\""),
        );
    }
    match (field("mode"), field("link")) {
        (Some(Value::String(mode)), None) if mode == "auto" => Action::Auto,
        (Some(Value::String(mode)), Some(Value::String(link))) if mode == "force" => {
            Action::Force(link.clone())
        }
        _ => Action::Refuse(
            400,
            "expected {\"mode\": \"auto\"} or {\"mode\": \"force\", \"link\": NAME}".into(),
        ),
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// A complete response; `head_only` for HEAD requests.
pub fn response(
    status: u16,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
    head_only: bool,
) -> Vec<u8> {
    let mut out = text!(
        "HTTP/1.1 ",
        status,
        " ",
        reason_phrase(status),
        "\r\nContent-Type: ",
        content_type,
        "\r\nContent-Length: ",
        body.len(),
        SECURITY_HEADERS,
        extra_headers,
        "Connection: close\r\n\r\n"
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// What every response says of its caching and of the browser's handling, after its length.
const SECURITY_HEADERS: &str = "\r\nCache-Control: no-store\r\n\
    X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n\
    Content-Security-Policy: default-src 'none'; script-src 'self' 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'\r\n";

/// A JSON error body: `{"error": "..."}`.
pub fn error_response(status: u16, message: &str) -> Vec<u8> {
    let body = text!("{\"error\":\"", json::escape(message), "\"}");
    response(status, "application/json", "", body.as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Request {
        parse(text.as_bytes()).expect("valid").expect("complete")
    }

    fn post(token: &str, content_type: &str, body: &str) -> Request {
        request(&format!(
            "POST /api/mode HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    const TOKEN: Option<&str> = Some("0123456789abcdef");

    #[test]
    fn reads_a_request_in_pieces() {
        let text = b"POST /api/mode HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd";
        for cut in 0..text.len() {
            assert_eq!(parse(&text[..cut]), Ok(None), "cut at {cut}");
        }
        let r = parse(text).unwrap().unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.body.as_slice()),
            ("POST", "/api/mode", &b"abcd"[..])
        );
        assert_eq!(r.header("HOST"), Some("x"));
        assert_eq!(request("GET /api/status?x=1 HTTP/1.1\r\n\r\n").path, "/api/status");
    }

    #[test]
    fn refuses_bad_and_oversized_requests() {
        let refused = |text: &[u8]| parse(text).expect_err("must be refused").status;
        assert_eq!(refused(&vec![b'a'; MAX_HEAD + 1]), 431);
        let many: String = (0..40).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(refused(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), 431);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n"), 413);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
        assert_eq!(refused(b"GET /\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/1.1 extra\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(refused(b"get / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(refused(b"GET x HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n"), 400);
    }

    #[test]
    fn reading_is_open_and_get_never_changes_state() {
        assert_eq!(route(&request("GET / HTTP/1.1\r\n\r\n"), TOKEN, &[]), Action::Page);
        assert_eq!(route(&request("GET /api/status HTTP/1.1\r\n\r\n"), None, &[]), Action::Status);
        assert!(matches!(
            route(&request("GET /api/mode?mode=auto HTTP/1.1\r\n\r\n"), TOKEN, &[]),
            Action::Refuse(405, _)
        ));
        assert!(matches!(
            route(&request("PUT /api/status HTTP/1.1\r\n\r\n"), TOKEN, &[]),
            Action::Refuse(405, _)
        ));
        assert!(matches!(
            route(&request("GET /etc/passwd HTTP/1.1\r\n\r\n"), TOKEN, &[]),
            Action::Refuse(404, _)
        ));
    }

    proptest::proptest! {
        #[test]
        fn final_dots_go_as_trim_end_matches_takes_them(text in "[a.é]{0,8}") {
            proptest::prop_assert_eq!(without_final_dots(&text), text.trim_end_matches('.'));
        }
    }

    #[test]
    fn only_the_routers_addresses_and_names_are_served() {
        let names = ["openwrt".to_string()];
        for host in [
            "192.168.1.1",
            "192.168.1.1:8080",
            "[2001:db8::1]",
            "[fe80::1]:8080",
            "OpenWrt",
            "openwrt.lan:8080",
            "openwrt.lan.",
            "openwrt..",
            "192.168.1.1.",
            "openwrt.:80",
        ] {
            assert!(host_allowed(Some(host), &names), "{host}");
        }
        assert!(host_allowed(None, &names), "HTTP/1.0 without a Host");
        for host in
            ["evil.example", "openwrt.evil.example", "192.168.1.1.nip.io", "[::1", "a:b:c", "", "."]
        {
            assert!(!host_allowed(Some(host), &names), "{host}");
        }
        let rebound = request("GET /api/status HTTP/1.1\r\nHost: rebind.example:8080\r\n\r\n");
        let Action::Refuse(421, message) = route(&rebound, TOKEN, &names) else { panic!() };
        assert!(message.contains("not to Host \"rebind.example:8080\""), "{message}");
    }

    #[test]
    fn content_length_is_digits_and_said_once() {
        let with = |headers: &str| {
            parse(format!("POST /api/mode HTTP/1.1\r\n{headers}\r\n\r\nabcde").as_bytes())
        };
        assert_eq!(with("Content-Length: 5").unwrap().unwrap().body, b"abcde");
        for bad in [
            "Content-Length: +5",
            "Content-Length: 5 5",
            "Content-Length: 0x5",
            "Content-Length: 5,5",
            "Content-Length: -1",
        ] {
            let refusal = with(bad).map(|_| ()).unwrap_err();
            assert_eq!(refusal.status, 400, "{bad}");
        }
        let twice = with("Content-Length: 5\r\nContent-Length: 4").map(|_| ()).unwrap_err();
        assert_eq!(twice.reason, "a header that may appear once appears twice");
        let hosts = with("Host: a\r\nHost: b\r\nContent-Length: 5").map(|_| ()).unwrap_err();
        assert_eq!(hosts.status, 400);
    }

    #[test]
    fn changing_the_mode_needs_the_token_and_a_json_body() {
        assert_eq!(
            route(&post("0123456789abcdef", "application/json", r#"{"mode":"auto"}"#), TOKEN, &[]),
            Action::Auto
        );
        assert_eq!(
            route(
                &post(
                    "0123456789abcdef",
                    "application/json; charset=utf-8",
                    r#"{"mode":"force","link":"wwan"}"#
                ),
                TOKEN,
                &[]
            ),
            Action::Force("wwan".into())
        );
        let refused = |r: &Request, token: Option<&str>| match route(r, token, &[]) {
            Action::Refuse(status, _) => status,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(&post("0123456789abcdef", "application/json", r#"{"mode":"auto"}"#), None),
            403
        );
        assert_eq!(
            refused(&post("wrong-token-xxxxx", "application/json", r#"{"mode":"auto"}"#), TOKEN),
            403
        );
        assert_eq!(refused(&post("", "application/json", r#"{"mode":"auto"}"#), TOKEN), 401);
        // A form post, which any web page can make a browser send: refused.
        assert_eq!(
            refused(
                &post("0123456789abcdef", "application/x-www-form-urlencoded", "mode=auto"),
                TOKEN
            ),
            415
        );
        assert_eq!(
            refused(&post("0123456789abcdef", "application/json", "{mode:auto}"), TOKEN),
            400
        );
        assert_eq!(
            refused(&post("0123456789abcdef", "application/json", r#"["auto"]"#), TOKEN),
            400
        );
        assert_eq!(
            refused(&post("0123456789abcdef", "application/json", r#"{"mode":"force"}"#), TOKEN),
            400
        );
        assert_eq!(
            refused(
                &post("0123456789abcdef", "application/json", r#"{"mode":"auto","x":1}"#),
                TOKEN
            ),
            400
        );
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"abc"));
    }

    #[test]
    fn responses_carry_safety_headers_and_escaped_errors() {
        let text = String::from_utf8(error_response(403, "wrong <token>")).unwrap();
        assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        assert!(text.contains("X-Content-Type-Options: nosniff"));
        assert!(text.contains("Content-Security-Policy:"));
        assert!(text.ends_with(r#"{"error":"wrong \u003ctoken\u003e"}"#));
        let head = response(200, "text/plain", "", b"body", true);
        assert!(String::from_utf8(head).unwrap().ends_with("\r\n\r\n"));
    }
}
