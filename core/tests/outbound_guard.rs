//! The outbound guard against real sockets: every refused address class is refused before
//! anything is contacted (a canary listener counts connections), allowed loopback is
//! contacted exactly once, redirects are not followed, bodies and time are bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orchestrator_core::CoreError;
use orchestrator_core::config::{CliOverrides, Config};
use orchestrator_core::outbound::{
    AllowList, OutboundError, OutboundGuard, OutboundLimits, ProcessMode,
};
use orchestrator_core::remote::RemoteWorkerClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a test server does with each connection, after reading the request head.
#[derive(Clone)]
enum Behaviour {
    /// Writes these bytes and closes.
    Raw(Arc<Vec<u8>>),
    /// Writes a header without a length, then this many bytes, then closes.
    Stream(usize),
    /// Never answers.
    Silent,
}

/// A listener that counts the connections it accepted.
struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Server {
    async fn start(bind: &str, behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer(stream, behaviour.clone()));
            }
        });
        Server { addr, accepted }
    }

    /// A canary: answers `200 ok`, so an allowed call completes.
    async fn canary(bind: &str) -> Server {
        Server::start(bind, raw("HTTP/1.1 200 OK", "ok")).await
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far, after giving stray ones a moment to arrive.
    async fn contacts(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.accepted.load(Ordering::SeqCst)
    }
}

fn raw(status_line: &str, body: &str) -> Behaviour {
    raw_with(status_line, "", body)
}

fn raw_with(status_line: &str, headers: &str, body: &str) -> Behaviour {
    let text = format!(
        "{status_line}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    Behaviour::Raw(Arc::new(text.into_bytes()))
}

async fn answer(mut stream: TcpStream, behaviour: Behaviour) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    match behaviour {
        Behaviour::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
        }
        Behaviour::Stream(size) => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                .await;
            let chunk = vec![b'x'; 16 * 1024];
            let mut sent = 0;
            while sent < size {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
                sent += chunk.len();
            }
        }
        Behaviour::Silent => tokio::time::sleep(Duration::from_secs(60)).await,
    }
}

fn guard(entries: &[&str]) -> OutboundGuard {
    OutboundGuard::new(AllowList::parse(entries).unwrap())
}

/// The guard's refusal of `url`, checked to be `BAD_USER_INPUT` on `input.url`.
async fn refusal(guard: &OutboundGuard, url: &str) -> String {
    match guard.check("input.url", url).await {
        Err(CoreError::BadInput { field, message }) => {
            assert_eq!(field, "input.url");
            message
        }
        Err(other) => panic!("{url}: unexpected error {other}"),
        Ok(checked) => panic!("{url} was allowed: {checked:?}"),
    }
}

#[tokio::test]
async fn loopback_is_refused_without_contact_unless_allowed() {
    let canary = Server::canary("127.0.0.1:0").await;
    let strict = guard(&["none"]);
    let port = canary.port();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}"),
        format!("http://LOCALHOST:{port}"),
        format!("http://127.1:{port}"),
        format!("http://0x7f.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("http://[::ffff:7f00:1]:{port}"),
    ] {
        let why = refusal(&strict, &url).await;
        assert!(why.contains("a loopback address"), "{url}: {why}");
        assert!(why.contains("ORCH_OUTBOUND_ALLOW"), "{url}: {why}");
    }
    for url in [
        format!("http://0.0.0.0:{port}"),
        format!("http://[::]:{port}"),
    ] {
        let why = refusal(&strict, &url).await;
        assert!(why.contains("an unspecified address"), "{url}: {why}");
    }
    // A loopback allowance does not open "unspecified" (which also reaches this host).
    let why = refusal(&guard(&["loopback"]), &format!("http://0.0.0.0:{port}")).await;
    assert!(why.contains("unspecified"), "{why}");
    assert_eq!(canary.contacts().await, 0, "nothing refused was contacted");
}

#[tokio::test]
async fn link_local_and_metadata_are_refused_whatever_the_list_says() {
    let canary = Server::canary("127.0.0.1:0").await;
    let open = guard(&["loopback", "private", "0.0.0.0/0", "::/0"]);
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://169.254.1.1:8080",
        "http://[fe80::1]:8080",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://0xa9.254.169.254/",
    ] {
        let started = Instant::now();
        let why = refusal(&open, url).await;
        assert!(why.contains("link-local/metadata"), "{url}: {why}");
        assert!(why.ends_with("which is never allowed"), "{url}: {why}");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{url}: refused before any connect attempt"
        );
    }
    assert_eq!(
        refusal(&open, "http://169.254.169.254/").await,
        "is 169.254.169.254, a link-local/metadata address, which is never allowed"
    );
    assert_eq!(canary.contacts().await, 0);
}

#[tokio::test]
async fn other_classes_are_refused_until_listed() {
    let canary = Server::canary("127.0.0.1:0").await;
    let strict = guard(&[]);
    for (url, class) in [
        ("http://10.0.0.1/", "private-network"),
        ("http://172.16.5.4/", "private-network"),
        ("http://192.168.1.1/", "private-network"),
        ("http://[fc00::1]/", "private-network"),
        ("http://[fd12:3456::1]/", "private-network"),
        ("http://[::ffff:10.1.2.3]/", "private-network"),
        ("http://100.64.0.1/", "CGNAT"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://240.0.0.1/", "reserved"),
    ] {
        let started = Instant::now();
        let why = refusal(&strict, url).await;
        assert!(why.contains(class), "{url}: {why}");
        assert!(why.contains("not allowed here"), "{url}: {why}");
        assert!(started.elapsed() < Duration::from_millis(500), "{url}");
    }
    // Listed classes and networks pass the check (which resolves, never connects).
    let listed = guard(&["private", "100.64.0.0/10", "224.0.0.0/4"]);
    for url in [
        "http://10.0.0.1/",
        "http://[fd12::1]/",
        "http://[::ffff:192.168.0.1]/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
    ] {
        listed.check("input.url", url).await.unwrap();
    }
    let why = refusal(&listed, "http://255.255.255.255/").await;
    assert!(why.contains("broadcast"), "{why}");
    assert_eq!(canary.contacts().await, 0);
}

#[tokio::test]
async fn allowed_loopback_is_contacted_exactly_once() {
    let canary = Server::canary("127.0.0.1:0").await;
    for allow in [vec!["loopback"], vec!["127.0.0.1/32"]] {
        let before = canary.accepted.load(Ordering::SeqCst);
        let guard = guard(&allow);
        let checked = guard.check("input.url", &canary.url()).await.unwrap();
        assert_eq!(checked.addrs(), [canary.addr]);
        let answer = guard
            .get(&checked, "/", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"ok");
        assert_eq!(canary.contacts().await, before + 1, "{allow:?}");
    }
    // A name is resolved once and every address it has must be allowed.
    let guard = guard(&["loopback"]);
    let checked = guard
        .check("input.url", &format!("http://localhost:{}", canary.port()))
        .await
        .unwrap();
    assert!(checked.addrs().iter().all(|a| a.ip().is_loopback()));
    let before = canary.accepted.load(Ordering::SeqCst);
    let answer = guard
        .get(&checked, "/", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(canary.contacts().await, before + 1);
}

#[tokio::test]
async fn a_guarded_client_resolves_no_other_name() {
    let canary = Server::canary("127.0.0.1:0").await;
    let guard = guard(&["loopback"]);
    let checked = guard
        .check("input.url", &format!("http://localhost:{}", canary.port()))
        .await
        .unwrap();
    let client = guard.client_for(&checked);
    let other = client
        .get(format!("http://example.com:{}/", canary.port()))
        .send()
        .await
        .unwrap_err();
    let why = orchestrator_core::outbound::root_cause(&other);
    assert!(why.contains("not checked by the outbound guard"), "{why}");
    assert_eq!(canary.contacts().await, 0);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    // The target of the redirect is a refused address (127.0.0.2 is outside the list).
    let canary = Server::canary("127.0.0.2:0").await;
    let location = format!("location: {}/\r\n", canary.url());
    let redirecting =
        Server::start("127.0.0.1:0", raw_with("HTTP/1.1 302 Found", &location, "")).await;
    let guard = guard(&["127.0.0.1/32"]);
    let checked = guard.check("input.url", &redirecting.url()).await.unwrap();
    let err = guard
        .get(&checked, "/", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err, OutboundError::Redirect { status: 302 });
    assert!(
        err.to_string().contains("redirects are not followed"),
        "{err}"
    );
    assert_eq!(redirecting.contacts().await, 1);
    assert_eq!(canary.contacts().await, 0, "the redirect was not followed");

    // Not even to an address that would be allowed, nor to the metadata service.
    let allowed_target = Server::canary("127.0.0.1:0").await;
    for target in [allowed_target.url(), "http://169.254.169.254".to_string()] {
        let header = format!("location: {target}/latest\r\n");
        let redirecting = Server::start(
            "127.0.0.1:0",
            raw_with("HTTP/1.1 307 Temporary Redirect", &header, ""),
        )
        .await;
        let checked = guard.check("input.url", &redirecting.url()).await.unwrap();
        let started = Instant::now();
        let err = guard
            .get(&checked, "/", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err, OutboundError::Redirect { status: 307 });
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    assert_eq!(allowed_target.contacts().await, 0);
}

#[tokio::test]
async fn bodies_over_the_limit_are_cut_off() {
    let limits = OutboundLimits {
        max_body_bytes: 64 * 1024,
        ..OutboundLimits::default()
    };
    let guard = guard(&["loopback"]).with_limits(limits);
    let big = "x".repeat(1024 * 1024);
    let declared = Server::start("127.0.0.1:0", raw("HTTP/1.1 200 OK", &big)).await;
    let streamed = Server::start("127.0.0.1:0", Behaviour::Stream(8 * 1024 * 1024)).await;
    for server in [&declared, &streamed] {
        let checked = guard.check("input.url", &server.url()).await.unwrap();
        let err = guard
            .get(&checked, "/", Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(err, OutboundError::TooLarge { limit: 64 * 1024 });
        assert!(err.to_string().contains("larger than 65536 bytes"), "{err}");
    }
    // At the limit is fine.
    let exact = Server::start(
        "127.0.0.1:0",
        raw("HTTP/1.1 200 OK", &"y".repeat(64 * 1024)),
    )
    .await;
    let checked = guard.check("input.url", &exact.url()).await.unwrap();
    let answer = guard
        .get(&checked, "/", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(answer.body.len(), 64 * 1024);
}

#[tokio::test]
async fn a_slow_server_hits_the_timeout() {
    let silent = Server::start("127.0.0.1:0", Behaviour::Silent).await;
    let guard = guard(&["loopback"]);
    let checked = guard.check("input.url", &silent.url()).await.unwrap();
    let started = Instant::now();
    let err = guard
        .get(&checked, "/", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err, OutboundError::Timeout(300));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(silent.contacts().await, 1);
}

#[tokio::test]
async fn malformed_and_unresolvable_urls_are_refused() {
    let guard = guard(&["loopback"]);
    for (url, needle) in [
        ("ftp://127.0.0.1/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("http://user:pw@127.0.0.1/", "credentials"),
        ("http://127.0.0.1/?next=http://169.254.169.254", "query"),
        ("", "http"),
    ] {
        let why = refusal(&guard, url).await;
        assert!(why.contains(needle), "{url}: {why}");
    }
    let why = refusal(&guard, "http://no-such-host.invalid/").await;
    assert!(why.contains("does not resolve"), "{why}");
}

#[tokio::test]
async fn the_process_mode_decides_the_default() {
    let canary = Server::canary("127.0.0.1:0").await;
    let config = Config::load_with_env(None, &CliOverrides::default(), |_| None).unwrap();
    assert!(config.outbound_allow.is_none());
    let standalone = OutboundGuard::for_mode(&config, ProcessMode::Standalone);
    standalone.check("input.url", &canary.url()).await.unwrap();
    for mode in [ProcessMode::Api, ProcessMode::Worker] {
        let why = refusal(&OutboundGuard::for_mode(&config, mode), &canary.url()).await;
        assert!(why.contains("loopback"), "{why}");
    }
    // A configured list wins over the mode's default, and settling keeps it.
    let mut config = Config::load_with_env(None, &CliOverrides::default(), |k| {
        (k == "ORCH_OUTBOUND_ALLOW").then(|| "none".to_string())
    })
    .unwrap();
    config.settle_outbound_allow(ProcessMode::Standalone);
    let why = refusal(&OutboundGuard::from_config(&config), &canary.url()).await;
    assert!(why.contains("loopback"), "{why}");
    assert_eq!(canary.contacts().await, 0);
}

#[tokio::test]
async fn remote_worker_calls_go_through_the_guard() {
    let canary = Server::canary("127.0.0.1:0").await;
    let client = RemoteWorkerClient::with_guard(guard(&["none"]));
    let why = client.health(&canary.url()).await.unwrap_err();
    assert!(why.contains("refused") && why.contains("loopback"), "{why}");
    let why = client.health("http://169.254.169.254").await.unwrap_err();
    assert!(why.contains("never allowed"), "{why}");
    assert_eq!(canary.contacts().await, 0);
}
