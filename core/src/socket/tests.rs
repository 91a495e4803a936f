use super::*;
use std::net::UdpSocket;

#[test]
fn batch_and_single_sends_arrive() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut s = DaemonSocket::new(Target::Addr(rx.local_addr().unwrap()), false);
    let payloads: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("datagram {i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
    let sent = s.send(&refs);
    assert_eq!(sent.datagrams, 100);
    assert_eq!(sent.errors, 0);
    let sent = s.send_each(&refs[..3]);
    assert_eq!(sent.datagrams, 3);
    let mut buf = [0u8; 64];
    for p in payloads.iter().chain(&payloads[..3]) {
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], p.as_slice());
    }
}

#[test]
fn errors_are_reported_at_most_once_a_minute() {
    let mut log = ErrorLog {
        enabled: true,
        last_report: None,
        unreported: 0,
    };
    let err = io::Error::from(io::ErrorKind::ConnectionRefused);
    assert!(log.note("send", &err), "the first error is reported");
    let reported = (0..10_000).filter(|_| log.note("send", &err)).count();
    assert_eq!(reported, 0, "then nothing for a minute");
    assert_eq!(log.unreported, 10_000, "but every one is counted");
    log.last_report = Some(Instant::now() - REPORT_EVERY);
    assert!(
        log.note("send", &err),
        "a minute later, one line with the count"
    );
    assert_eq!(log.unreported, 0);
}

fn closed_port() -> SocketAddr {
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

#[test]
fn refused_datagrams_are_the_ones_counted_failed() {
    let mut s = DaemonSocket::new(Target::Addr(closed_port()), false);
    let payloads: Vec<Vec<u8>> = (0..1000).map(|i| format!("d{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
    let (mut ok, mut failed) = (0, 0);
    for chunk in refs.chunks(MAX_BATCH) {
        let sent = s.send(chunk);
        ok += sent.datagrams;
        failed += sent.failed.count_ones() as usize;
    }
    // Loopback answers every datagram with a port unreachable at once.
    assert!(
        ok <= 50,
        "{ok} of 1000 datagrams to a closed port counted sent"
    );
    assert!(failed >= 900, "only {failed} of 1000 counted failed");
}

#[test]
fn a_refusing_address_gives_way_to_the_next() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut s = DaemonSocket::with_addrs(&[closed_port(), rx.local_addr().unwrap()]);
    let mut delivered = 0;
    for i in 0..20 {
        let d = format!("datagram {i}");
        delivered += s.send(&[d.as_bytes()]).datagrams;
    }
    assert_eq!(s.current_address(), Some(rx.local_addr().unwrap()));
    assert!(
        delivered >= 19,
        "after the first refusal, the next address takes them"
    );
    let mut buf = [0u8; 64];
    assert!(rx.recv(&mut buf).is_ok());
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[test]
fn a_batch_stops_when_its_socket_is_dropped() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut s = DaemonSocket::new(Target::Addr(rx.local_addr().unwrap()), false);
    s.send(&[b"warm".as_slice()]);
    let calls = s.mmsg.calls;
    s.mmsg.fail_next = Some(io::ErrorKind::NotConnected);
    let batch = [b"a".as_slice(), b"b", b"c", b"d"];
    let sent = s.send(&batch);
    assert_eq!(
        s.mmsg.calls,
        calls + 1,
        "no call with the dropped socket's descriptor"
    );
    assert_eq!(sent.failed, 0b1111, "the whole batch is counted failed");
    assert_eq!(sent.datagrams, 0);
    assert_eq!(s.send(&batch).datagrams, 4, "the next batch reconnects");
}

#[test]
fn missing_daemon_is_counted() {
    let mut s = DaemonSocket::new(Target::Addr(closed_port()), false);
    let mut errors = 0;
    for _ in 0..20 {
        errors += s.send(&[b"x".as_slice()]).errors;
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(errors > 0, "ICMP port unreachable should surface as errors");
}

#[test]
fn one_send_each_counts_every_refusal_once() {
    let mut s = DaemonSocket::new(Target::Addr(closed_port()), false);
    let payloads: Vec<Vec<u8>> = (0..200).map(|i| format!("d{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
    let (mut ok, mut failed, mut errors) = (0, 0, 0);
    for chunk in refs.chunks(8) {
        let sent = s.send_each(chunk);
        ok += sent.datagrams;
        failed += (sent.failed.count_ones() + sent.late.count_ones()) as usize;
        errors += sent.errors;
    }
    assert!(ok <= 10, "{ok} of 200 refused datagrams counted sent");
    assert_eq!(errors, failed, "each refusal counted once");
}

/// A late refusal is matched to its datagram by fingerprint: any of the
/// first `FINGERPRINT_BYTES` bytes must tell two datagrams apart, and
/// nothing after them may — the error queue returns more of a datagram than
/// that, or all of a shorter one.
#[test]
fn fingerprints_tell_apart_every_byte_they_cover() {
    let base: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
    for len in [0, 1, 7, 8, 9, 63, 64, 255, 256, 300] {
        let d = &base[..len];
        assert_eq!(fingerprint(d) & 1, 1, "0 means none");
        for i in 0..len.min(FINGERPRINT_BYTES) {
            let mut other = d.to_vec();
            other[i] ^= 0x20;
            assert_ne!(fingerprint(d), fingerprint(&other), "len {len}, byte {i}");
        }
        if (1..=FINGERPRINT_BYTES).contains(&len) {
            assert_ne!(fingerprint(d), fingerprint(&d[..len - 1]), "len {len}");
        }
    }
    let mut longer = base.clone();
    longer[FINGERPRINT_BYTES] ^= 1;
    assert_eq!(fingerprint(&base), fingerprint(&longer));
    // A returned payload cut at another length than the datagram still matches.
    let whole = fingerprint(&base);
    assert_eq!(whole, fingerprint(&base[..FINGERPRINT_BYTES]));
    assert_eq!(whole, fingerprint(&base[..FINGERPRINT_BYTES + 1]));
}
