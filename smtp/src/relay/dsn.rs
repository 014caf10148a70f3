//! Delivery status notifications (RFC 3464) for mail that failed permanently or
//! expired in the queue, in a `multipart/report` (RFC 6522) with the original
//! message's header attached.

use lifeboat_store::UnixTime;

/// Why a message bounced.
#[derive(Debug, Clone)]
pub enum BounceReason {
    /// The remote server refused it (its reply).
    Refused(String),
    /// It could not be delivered before the queue lifetime ran out (last error).
    Expired(Option<String>),
}

/// Most bytes of the original header quoted in a bounce.
const ORIGINAL_HEADER_BYTES_MAX: usize = 64 * 1024;

/// RFC 5322 date-time for `t` (UTC), as in Received headers.
pub fn rfc5322_date(t: UnixTime) -> String {
    crate::session::received::date_time(t.max(0) as u64)
}

fn original_header(message: &[u8]) -> &[u8] {
    let end = memchr::memmem::find(message, b"\r\n\r\n")
        .map(|i| i + 2)
        .unwrap_or(message.len());
    &message[..end.min(ORIGINAL_HEADER_BYTES_MAX)]
}

/// Builds the bounce sent to `sender` about `recipient`.
pub fn bounce(
    hostname: &str,
    sender: &str,
    recipient: &str,
    reason: &BounceReason,
    original: &[u8],
    now: UnixTime,
    id: &str,
) -> Vec<u8> {
    let boundary = format!("lifeboat-dsn-{id}-{now}");
    let (status, action_text, diagnostic) = match reason {
        BounceReason::Refused(reply) => {
            let status = reply
                .split_whitespace()
                .nth(1)
                .filter(|s| s.split('.').count() == 3 && s.starts_with('5'))
                .unwrap_or("5.0.0")
                .to_string();
            (
                status,
                "was refused by the receiving server",
                format!(
                    "Diagnostic-Code: smtp; {}\r\n",
                    reply.replace(['\r', '\n'], " ")
                ),
            )
        }
        BounceReason::Expired(last) => (
            "4.4.7".to_string(),
            "could not be delivered before it expired in the queue",
            last.as_ref()
                .map(|e| {
                    format!(
                        "Diagnostic-Code: smtp; {}\r\n",
                        e.replace(['\r', '\n'], " ")
                    )
                })
                .unwrap_or_default(),
        ),
    };
    let date = rfc5322_date(now);
    let mut out = Vec::with_capacity(2048 + original.len().min(ORIGINAL_HEADER_BYTES_MAX));
    out.extend_from_slice(
        format!(
            "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n\
             To: <{sender}>\r\n\
             Subject: Undelivered Mail Returned to Sender\r\n\
             Date: {date}\r\n\
             Message-ID: <dsn.{id}.{now}@{hostname}>\r\n\
             Auto-Submitted: auto-replied\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status;\r\n\
             \tboundary=\"{boundary}\"\r\n\
             \r\n\
             This is a MIME-encapsulated message.\r\n\
             \r\n\
             --{boundary}\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\
             \r\n\
             This is the mail system at {hostname}.\r\n\
             \r\n\
             Your message to <{recipient}> {action_text}.\r\n\
             \r\n\
             --{boundary}\r\n\
             Content-Type: message/delivery-status\r\n\
             \r\n\
             Reporting-MTA: dns; {hostname}\r\n\
             Arrival-Date: {date}\r\n\
             \r\n\
             Final-Recipient: rfc822; {recipient}\r\n\
             Action: failed\r\n\
             Status: {status}\r\n\
             {diagnostic}\
             \r\n\
             --{boundary}\r\n\
             Content-Type: text/rfc822-headers\r\n\
             \r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(original_header(original));
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_742_912),
            "Fri, 27 Nov 2026 01:28:32 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn a_bounce_is_a_delivery_status_report() {
        let original = b"From: a@x.test\r\nSubject: hello\r\n\r\nbody text\r\n";
        let dsn = bounce(
            "mx.example.test",
            "a@x.test",
            "b@example.test",
            &BounceReason::Refused("550 5.1.1 no such user".into()),
            original,
            1_795_742_912,
            "42",
        );
        let text = String::from_utf8(dsn).unwrap();
        assert!(text.contains("Content-Type: multipart/report; report-type=delivery-status;"));
        assert!(text.contains("Final-Recipient: rfc822; b@example.test"));
        assert!(text.contains("Action: failed"));
        assert!(text.contains("Status: 5.1.1"));
        assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user"));
        assert!(text.contains("Subject: hello"));
        assert!(!text.contains("body text"), "only the header is returned");
        assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");
        let parsed = mail_parser::MessageParser::new()
            .parse(text.as_bytes())
            .unwrap();
        assert_eq!(parsed.parts.len(), 4);
        let expired = bounce(
            "h",
            "a@x",
            "b@y",
            &BounceReason::Expired(None),
            original,
            0,
            "1",
        );
        assert!(String::from_utf8(expired)
            .unwrap()
            .contains("Status: 4.4.7"));
    }
}
