//! A TCP proxy in front of an HTTP server that records the method and path of every request
//! passing through: what a test counts to show which files a client fetched from a real
//! object store. Requests are forwarded unchanged (so signatures made for the proxy's address
//! still verify), responses are copied back byte for byte.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct RequestLog {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RequestLog {
    /// Listen on a free loopback port and forward to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> RequestLog {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, upstream) = (seen.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (log, upstream) = (log.clone(), upstream.clone());
                std::thread::spawn(move || {
                    if let Ok(server) = TcpStream::connect(&upstream) {
                        relay(client, server, &log);
                    }
                });
            }
        });
        RequestLog { addr, seen }
    }

    /// The proxy's URL, to use as the store's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Forget the requests so far.
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

/// Copy requests from `client` to `server`, recording each request line; responses go back
/// on a thread of their own.
fn relay(client: TcpStream, mut server: TcpStream, log: &Mutex<Vec<String>>) {
    let (Ok(mut back_to), Ok(mut from_server)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let responses = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut back_to);
        let _ = back_to.shutdown(Shutdown::Write);
    });
    let mut from_client = BufReader::new(client);
    while let Some(head) = read_head(&mut from_client) {
        let first = head.lines().next().unwrap_or_default();
        let mut parts = first.split(' ');
        let line = format!(
            "{} {}",
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default()
        );
        log.lock().unwrap().push(line);
        if server.write_all(head.as_bytes()).is_err() {
            break;
        }
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let forwarded = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            forward_chunked(&mut from_client, &mut server)
        } else {
            let n = header("content-length")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            std::io::copy(&mut (&mut from_client).take(n), &mut server).is_ok_and(|c| c == n)
        };
        if !forwarded {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
    let _ = responses.join();
}

/// One request's head (request line and headers, through the blank line), or `None` at
/// the end of the connection.
fn read_head(r: &mut impl BufRead) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" || line == "\n" {
            return Some(head);
        }
    }
}

/// Forward a chunked body: each size line, its bytes and CRLF, through the last chunk and
/// its trailers.
fn forward_chunked(r: &mut BufReader<TcpStream>, w: &mut TcpStream) -> bool {
    loop {
        let mut size_line = String::new();
        if r.read_line(&mut size_line).unwrap_or(0) == 0
            || w.write_all(size_line.as_bytes()).is_err()
        {
            return false;
        }
        let hex = size_line.split(';').next().unwrap_or_default().trim();
        let Ok(n) = u64::from_str_radix(hex, 16) else {
            return false;
        };
        if n == 0 {
            // Trailers, then the blank line.
            return match read_head(r) {
                Some(rest) => w.write_all(rest.as_bytes()).is_ok(),
                None => false,
            };
        }
        // The chunk and its CRLF.
        if !std::io::copy(&mut r.take(n + 2), w).is_ok_and(|c| c == n + 2) {
            return false;
        }
    }
}
